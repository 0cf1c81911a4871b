"""What one app instance shares across requests: its settings and its job backend (in app.extensions)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from app.config import Settings
from app.jobs import JobBackend


@dataclass(frozen=True)
class WebState:
    settings: Settings
    backend: JobBackend


def current() -> WebState:
    return current_app.extensions["zssr"]
