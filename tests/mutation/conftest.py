"""The mutation-testing tools here are scripts, not tests: pytest collects nothing in this folder."""

collect_ignore_glob = ["*"]
