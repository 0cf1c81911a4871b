"""The entry points of the web service: the development server's arguments and the gunicorn settings."""

from __future__ import annotations

import importlib.util
import runpy

import pytest

from websupport import ROOT


def load_main_flask():
    spec = importlib.util.spec_from_file_location("main_flask", ROOT / "main-flask.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_development_server_arguments():
    main_flask = load_main_flask()
    args = main_flask.parse_args([])
    assert (args.host, args.port, args.debug, args.config) == ("127.0.0.1", 8000, False, None)
    assert main_flask.parse_args(["--debug", "--host", "::1"]).debug


def test_debug_is_refused_off_loopback(capsys):
    with pytest.raises(SystemExit):
        load_main_flask().parse_args(["--debug", "--host", "0.0.0.0"])
    assert "loopback" in capsys.readouterr().err


def test_gunicorn_runs_one_threaded_worker_without_preloading():
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["workers"] == 1 and settings["worker_class"] == "gthread" and settings["threads"] > 1
    assert settings["preload_app"] is False
    assert settings["wsgi_app"] == "app.web:create_app()"
    assert "request_id" in settings["logconfig_dict"]["filters"]
