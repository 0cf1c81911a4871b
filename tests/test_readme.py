"""The README as CI and readers use it: the test command CI runs, and the links to the measurement record."""

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
