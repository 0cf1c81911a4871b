"""The pages a person sees: the upload page (its script talks to the JSON API)."""

from __future__ import annotations

from flask import Blueprint, render_template

from app.jobs.backend import SCALE_FACTOR, SCALE_TIMES
from app.web.access import open_page_session, page_needs_key
from app.web.state import current

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    service = current().settings.service
    open_page_session(service)
    return render_template("index.html", max_mb=service.max_MB, crop_sizes=service.crop_sizes,
                           default_crop=service.default_crop, min_side=service.min_side,
                           max_pixels=service.max_pixels, scale=round(SCALE_FACTOR ** SCALE_TIMES),
                           steps=SCALE_TIMES, needs_key=page_needs_key(service))
