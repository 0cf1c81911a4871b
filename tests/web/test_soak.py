"""The soak protocol, briefly: a real gunicorn, polite clients served, the abusive one limited, nothing lost."""

from __future__ import annotations

import json

from app.bench import soak


def test_a_short_soak_serves_the_polite_limits_the_abusive_and_loses_nothing(tmp_path):
    assert soak.main(["--backend", "memory", "--seconds", "6", "--clients", "2", "--pace", "2",
                      "--out", str(tmp_path)]) == 0
    run = json.loads((tmp_path / "soak.json").read_text())["runs"][0]
    assert run["server_errors"] == 0 and run["lost"] == 0 and run["clean_disk"]
    assert run["polite_jobs"] >= 4 and run["polite_done"] == run["polite_jobs"] and run["polite_429"] == 0
    assert run["abusive_429"] > 0
    abusive = next(c for c in run["clients"] if c["abusive"])
    assert abusive["accepted"] <= 10  # the rate limit (10/minute) holds
    assert run["rss_start_kb"] > 0 and run["rss_end_kb"] > 0
    assert "| memory |" in (tmp_path / "soak.md").read_text()
