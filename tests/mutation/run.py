"""Mutation testing of one module at a time: mutmut on a copy of the tree, only the fast tests that cover it, a score.

    .venv/bin/python tests/mutation/run.py app/engine/lr_policy.py [--jobs 1] [--show] [--survivors]

Needs `pip install -r tests/mutation/requirements.txt`. The tree (app/, tests/ and the files the tests read) is
copied to a scratch folder and mutmut runs there, so the working tree never holds mutated code and other edits in
it are not disturbed. The score is killed / (total - equivalent); the equivalent mutants, each with its reason, are
listed in tests/mutation/EQUIVALENT.md. Survivors are printed with their diffs (all of them with --show).
--survivors keeps the last run's results and tries only its survivors again, against the tests as they are now.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENT = Path(__file__).with_name("EQUIVALENT.md")

# Module -> the fast tests that exercise it. mutmut runs each mutant against only those of these tests that reached
# the mutated function, so a longer list costs little per mutant but lengthens the first (coverage) pass.
TESTS = {
    "app/engine/lr_policy.py": ["tests/test_lr_policy.py"],
    "app/engine/dihedral.py": ["tests/test_dihedral.py", "tests/test_infer.py"],
    "app/jpeg_profile.py": ["tests/test_jpeg_profile.py", "tests/test_degradation.py"],
    "app/engine/infer.py": ["tests/test_infer.py", "tests/test_properties_engine.py"],
    "app/engine/network.py": ["tests/test_network.py", "tests/test_infer.py"],
    "app/engine/pairs.py": ["tests/test_train.py", "tests/test_warp.py", "tests/test_pinned_boundaries.py"],
    "app/engine/resize.py": ["tests/test_resize.py", "tests/test_mutants_resize.py", "tests/test_paper_fidelity.py"],
    "app/web/uploads.py": ["tests/web/test_uploads.py", "tests/web/test_mutants_uploads.py",
                           "tests/web/test_output_formats.py"],
    "app/web/access.py": ["tests/web/test_access.py", "tests/web/test_mutants_access.py"],
    "app/jobs/output.py": ["tests/test_output.py", "tests/web/test_output_formats.py"],
    "app/config.py": ["tests/test_config.py", "tests/test_mutants_config.py"],
    "app/engine/degradation.py": ["tests/test_degradation.py", "tests/test_noise_estimate.py",
                                  "tests/test_mutants_degradation.py"],
    # The runner's tests start worker threads; under mutmut's stats pass on a loaded machine their first warm-up
    # outlasted test_jobs.py's 5 s waits, so test_workers.py (30 s waits) goes first and pays it.
    "app/jobs/memory.py": ["tests/web/test_workers.py", "tests/web/test_jobs.py", "tests/web/test_mutants_memory.py"],
    "app/jobs/progress.py": ["tests/web/test_progress.py"],
    "app/jobs/model.py": ["tests/web/test_mutants_model.py"],
    "app/engine/holdout.py": ["tests/test_learning_check.py", "tests/test_mutants_holdout.py"],
    "app/engine/warm_start.py": ["tests/test_warm_start.py", "tests/test_preflight.py", "tests/test_learning_check.py",
                                 "tests/test_cli_camera.py", "tests/test_mutants_warm_start.py"],
    "app/engine/image_io.py": ["tests/test_image_io.py"],
    "app/engine/checks.py": ["tests/test_preflight.py", "tests/test_learning_check.py", "tests/test_mutants_checks.py"],
    # Its handlers are defined inside install(), which mutmut 3 does not mutate (see EQUIVALENT.md).
    "app/web/errors.py": ["tests/web/test_errors.py"],
    "app/engine/profiles.py": ["tests/test_profiles.py"],
    "app/bench/gate.py": ["tests/test_gate.py"],
}

# Tests of those files left out of the mutation run because each takes seconds that a faster test of the same
# behaviour (named beside) spends in a fraction: on two shared cores they made one module's run take hours.
DESELECTED = {
    "app/engine/degradation.py": [
        # tests/test_mutants_degradation.py: the same estimates and their order on 64 px photos of a smaller scene
        "tests/test_degradation.py::test_kernel_estimate_finds_the_blur_of_a_photo_made_small_with_a_known_kernel",
        "tests/test_degradation.py::test_kernel_estimate_prefers_the_true_kernel_to_its_neighbours",
    ],
}

# What the tests read besides app/ and tests/.
COPIED = ["app", "tests", "pytest.ini", "config.json", "templates", "static", "README.md", "main.py"]

# Statuses that count as the tests noticing the mutant (a timeout is a mutant that made the tests hang).
DETECTED = {"killed", "timeout", "segfault", "caught by type check"}


def copy_tree(work: Path, names: list[str]) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "mutants")
    for name in names:
        source = ROOT / name
        if (work / name).is_dir():
            shutil.rmtree(work / name)
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, work / name)


def write_config(work: Path, module: str, tests: list[str]) -> None:
    # mutmut reads its settings from setup.cfg in the folder it runs in; the repository's top level stays as it is.
    deselected = [line for test in DESELECTED.get(module, []) for line in ("    --deselect", f"    {test}")]
    lines = ["[mutmut]", "source_paths = app", f"only_mutate = {module}",
             # torch is not fork-safe once the tests have run in the parent, so mutants fork from a clean server.
             "process_isolation = forkserver",
             "also_copy =", *(f"    {name}" for name in COPIED[2:]),
             "pytest_add_cli_args_test_selection =", *(f"    {name}" for name in tests),
             "pytest_add_cli_args =", "    -p", "    no:cacheprovider", *deselected]
    (work / "setup.cfg").write_text("\n".join(lines) + "\n")


def equivalent_names() -> set[str]:
    return set(re.findall(r"`([\w.ǁ]+__mutmut_\d+)`", EQUIVALENT.read_text(encoding="utf-8")))


def results(work: Path, mutmut: list[str]) -> dict[str, str]:
    out = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, capture_output=True, text=True, check=True)
    found = (re.match(r"\s+(\S+): (.+)$", line) for line in out.stdout.splitlines())
    return {m.group(1): m.group(2).strip() for m in found if m}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", choices=sorted(TESTS), help="path of the module to mutate")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (the cores are shared)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "zssr-mutation",
                        help="scratch folder; each module gets its own subfolder, made anew unless --survivors")
    parser.add_argument("--show", action="store_true", help="print the diff of every surviving mutant")
    parser.add_argument("--survivors", action="store_true",
                        help="rerun only the last run's survivors, with the tests copied afresh (app/ unchanged)")
    args = parser.parse_args()

    tests = [name for name in TESTS[args.module] if (ROOT / name).exists()]
    work = args.work / args.module.replace("/", ".").removesuffix(".py")
    mutmut = ["nice", "-n", "5", sys.executable, "-m", "mutmut"]
    again: list[str] = []
    before: dict[str, str] = {}
    if args.survivors:
        before = results(work, mutmut)
        again = sorted(name for name, s in before.items() if s not in DETECTED and name not in equivalent_names())
        copy_tree(work, ["tests"])
    else:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        copy_tree(work, COPIED)
    write_config(work, args.module, tests)
    # One torch thread per mutant: more only spin against each other and the background work on two cores.
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    started = time.monotonic()
    # With --survivors and none left, `mutmut run` without names would redo every verdict it dropped.
    if again or not args.survivors:
        run = subprocess.run([*mutmut, "run", "--max-children", str(args.jobs), *again], cwd=work, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        (work / "mutmut-run.log").write_text(run.stdout)
        if run.returncode != 0:
            print(run.stdout[-4000:])
            print(f"mutmut run failed ({run.returncode}); log in {work / 'mutmut-run.log'}", file=sys.stderr)
            return 1
    minutes = (time.monotonic() - started) / 60

    # mutmut drops cached verdicts when the test selection changes; those not tried again keep the last run's.
    status = {**before, **{name: s for name, s in results(work, mutmut).items() if not before or name in again}}
    equivalent = equivalent_names()
    killed = sorted(name for name, s in status.items() if s in DETECTED)
    survived = sorted(name for name, s in status.items() if s not in DETECTED and name not in equivalent)
    equal = sorted(name for name, s in status.items() if s not in DETECTED and name in equivalent)
    stale = sorted(name for name in killed if name in equivalent)
    for name in survived if args.show else survived[:20]:
        shown = subprocess.run([*mutmut, "show", name], cwd=work, capture_output=True, text=True)
        print(f"{status[name]}: {shown.stdout.strip()}\n")
    for name in stale:
        print(f"listed as equivalent but killed (stale entry in {EQUIVALENT.name}): {name}")
    scored = len(status) - len(equal)
    score = 100 * len(killed) / scored if scored else 100.0
    print(f"tests: {' '.join(tests)}")
    print(f"{args.module}: {len(status)} mutants, {len(killed)} killed, {len(equal)} equivalent, "
          f"{len(survived)} survived; score {len(killed)}/{scored} = {score:.1f}% in {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
