"""The README as CI and readers use it: the commands and their prerequisites, the terms, the API's sample and errors,
where each config key applies and its defaults, the operator's sections, and the links to the measurement record."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
TEST_COMMAND = ("python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && "
                ".venv/bin/python -m pytest -q")


def test_the_readme_gives_the_test_command_ci_runs():
    assert f"```sh\n{TEST_COMMAND}\n```" in README


def test_every_local_link_of_the_readme_leads_somewhere():
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README)
    assert "docs/measurements.md" in links
    assert [link for link in links if not (ROOT / link).exists()] == []


def test_the_measurement_record_keeps_its_sections_and_the_readme_its_headlines():
    record = (ROOT / "docs" / "measurements.md").read_text(encoding="utf-8")
    for heading in ("### Measured\n", "### Measured: non-ideal, kernel given", "### Measured: non-ideal, kernel unknown",
                    "### Measured: the service under load", "### Measured on real photos (8x web jobs)",
                    "**Measured on an NVIDIA H100 80GB HBM3**"):
        assert heading in record and heading not in README, heading
    assert "### Headline figures" in README


def section(title: str) -> str:
    """The README's text under `## title`, up to the next `## ` heading."""
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_quick_start_gives_its_prerequisites_before_the_commands_that_need_them():
    quick = section("Quick start")
    service = ("python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && "
               ".venv/bin/gunicorn -c gunicorn.conf.py")
    assert f"```sh\n{service}\n```" in quick
    assert "Python 3.10 or newer" in quick
    cpu_wheel = "pip install torch==2.14.1 --index-url https://download.pytorch.org/whl/cpu"
    assert cpu_wheel in quick and quick.index(cpu_wheel) < quick.index(service)
    packages = "apt-get install -y chromium redis-server libgs-common"
    assert packages in quick and quick.index(packages) < quick.index(TEST_COMMAND)
    for skipped in ("tests/web/test_browser.py", "Redis-backend test", "colour-profile tests"):
        assert skipped in quick
    assert "torchvision was measured and dropped" in quick
    pinned = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert f"torch=={pinned} " in quick  # the CPU wheel named is the version requirements.txt pins


def test_it_opens_with_the_terms_it_uses():
    opening = README.split("\n## ", 1)[0]
    for term in ("LR son, HR father", "Gradual steps", "Self-ensemble", "Back-projection", "Warm start",
                 "photo8x"):
        assert f"**{term}" in opening, term
    assert "zssr_x2_photo_sharp.pt" in opening  # the JPEG warm start, with the blurry one's file beside it


def test_it_tells_no_story_of_its_making():
    for pattern in (r"\b(this|next|later|earlier|first|second|third|fourth|fifth) session\b", r"\bround\b",
                    r"(?<!-)\b(quiet|loaded)\b"):  # --quiet is the CLI's flag
        assert not re.search(pattern, README, re.I), pattern


def test_the_opening_figures_are_the_headline_tables():
    opening, table = README.split("\n## ", 1)[0], section("Measurements")
    assert "37.12" in opening and "| Set5 x2 | 33.68 | `paper` 37.12" in table
    assert "+1.04 dB over bicubic" in opening and "+1.04 in 10.6 s (warm starts alone +0.89)" in table
    assert "+0.15 dB" in opening  # 1.04 - 0.89


def sample_job() -> dict:
    import json

    using = section("Using it")
    return json.loads(using.split("```json\n", 1)[1].split("\n```", 1)[0])


def test_the_sample_response_has_every_field_of_the_api():
    from app.web.openapi import SCHEMAS

    job = sample_job()
    assert list(job) == list(SCHEMAS["Job"]["properties"])
    assert list(job["result"]) == list(SCHEMAS["Result"]["properties"])
    fields = section("Using it").split("| field | meaning |", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`(\w+)`", "".join(line.split("|")[1] for line in fields.splitlines()[2:])))
    assert named == set(SCHEMAS["Result"]["properties"])


def test_the_error_table_lists_every_status_and_code():
    from app.web.errors import STATUS

    using = section("Using it")
    table = using.split("| status | `error` | when |", 1)[1].split("\n\n", 1)[0]
    rows = {(int(cells[1]), code) for line in table.splitlines()[2:]
            for cells in [line.split("|")] for code in re.findall(r"`(\w+)`", cells[2])}
    assert {(status, code) for _, status, code in STATUS} <= rows
    assert {status for status, _ in rows} >= {400, 401, 403, 404, 409, 413, 415, 429, 500, 503}


def test_the_script_example_waits_when_told_and_polls_the_location():
    using = section("Using it")
    script = using.split("**From a script**", 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    assert "429|503" in script and "retry-after" in script.lower() and "location" in script.lower()
    assert "['image']" not in script and '["image"]' not in script


CONFIG_ROW = re.compile(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \| .+ \|$", re.M)
WHERE = {"CLI", "web", "web (Redis)", "both", "CLI (web: its own)"}


def test_the_configuration_table_says_where_each_key_applies_and_both_defaults():
    import dataclasses
    import json

    from app.config import ServiceConfig
    from app.engine.config import EngineConfig

    config = json.loads((ROOT / "config.json").read_text(encoding="utf-8"))
    rows = {m.group(1): m.groups()[1:] for m in CONFIG_ROW.finditer(section("Configuring it"))}
    for cls in (ServiceConfig, EngineConfig):
        for f in dataclasses.fields(cls):
            where, code, in_file = rows[f.name]
            assert where in WHERE, f.name
            default = list(f.default) if isinstance(f.default, tuple) else f.default
            assert code == f"`{json.dumps(default)}`", f.name
            if f.name == "profiles":
                continue
            expected = f"`{json.dumps(config[f.name])}`" if f.name in config else "—"
            assert in_file.split(" (profiles:")[0] == expected, f.name


def test_the_keys_a_web_job_sets_itself_are_marked():
    import dataclasses

    from app.config import load_settings
    from app.jobs.backend import service_engine_config

    settings = load_settings(overrides={"scale_times": 1, "back_projection_iters": 5, "time_budget_s": 99.0})
    job = service_engine_config(settings)
    changed = {f.name for f in dataclasses.fields(job) if getattr(job, f.name) != getattr(settings.engine, f.name)}
    rows = {m.group(1): m.group(2) for m in CONFIG_ROW.finditer(section("Configuring it"))}
    assert changed and {key for key in changed if rows[key] != "CLI (web: its own)"} == set()


def test_the_deployment_section_answers_the_operators_questions():
    deploying = section("Deploying it")
    for heading in ("Reverse proxy and TLS", "Keys", "Limits", "Metrics", "Sizing", "Logs and request ids",
                    "Privacy", "Deploying new weights", "Redis in production", "Scaling out", "Failure bounds"):
        assert f"\n### {heading}\n" in deploying, heading
    for phrase in ("client_max_body_size", "proxy_read_timeout", "X-Forwarded-Proto", "ZSSR_SECRET_KEY",
                   "maxmemory-policy noeviction", "rediss://", "--metrics-host", "keep_gps", "sha256sum"):
        assert phrase in deploying, phrase
    assert "\n## Input profiles\n" in README
