"""Property-based tests of the config's ranges: every numeric key of the engine and the service accepts any value
in its declared range, its closed bounds exactly, and refuses the nearest value beyond either bound (the next
integer, the next float) with an error that names the key."""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest
from hypothesis import given, strategies as st

from app.config import ServiceConfig
from app.engine.config import EngineConfig
from app.errors import ConfigError


def _ranged_keys() -> list[tuple[type, str, type, dict]]:
    """(class, key, int or float, metadata) of every key with a declared lower or upper bound."""
    keys = []
    for cls in (EngineConfig, ServiceConfig):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.metadata.get("lo") is None and f.metadata.get("hi") is None:
                continue
            annotation = hints[f.name]
            args = [a for a in typing.get_args(annotation) if a not in (type(None), Ellipsis)]
            kind = args[0] if args else annotation
            keys.append((cls, f.name, kind, f.metadata))
    return keys


RANGED = _ranged_keys()
IDS = [f"{cls.__name__}.{key}" for cls, key, _, _ in RANGED]


def make(cls: type, key: str, value: int | float):
    """The config with `key` set to `value` (a one-item list for the list-valued crop_sizes)."""
    default = next(f.default for f in dataclasses.fields(cls) if f.name == key)
    return cls(**{key: [value] if isinstance(default, tuple) else value})


def stored(config, key: str):
    value = getattr(config, key)
    return value[0] if isinstance(value, tuple) else value


def refused(cls: type, key: str, value: int | float) -> None:
    with pytest.raises(ConfigError) as caught:
        make(cls, key, value)
    assert caught.value.key == key and repr(key) in str(caught.value)


def test_the_ranged_keys_are_many_and_numeric():
    assert len(RANGED) >= 35
    assert {kind for _, _, kind, _ in RANGED} == {int, float}


@pytest.mark.parametrize("cls, key, kind, meta", RANGED, ids=IDS)
def test_each_bound_holds_exactly(cls, key, kind, meta):
    lo, hi = meta["lo"], meta["hi"]
    if kind is int:
        if meta["lo_open"]:
            refused(cls, key, int(lo))
            assert stored(make(cls, key, int(lo) + 1), key) == int(lo) + 1
        else:
            assert stored(make(cls, key, int(lo)), key) == int(lo)
        refused(cls, key, int(lo) - 1)
        assert stored(make(cls, key, int(hi)), key) == int(hi)
        refused(cls, key, int(hi) + 1)
        return
    if meta["lo_open"]:
        refused(cls, key, float(lo))
        inside = math.nextafter(lo, math.inf)
        assert stored(make(cls, key, inside), key) == inside
    else:
        assert stored(make(cls, key, float(lo)), key) == lo
    refused(cls, key, math.nextafter(lo, -math.inf))
    assert stored(make(cls, key, float(hi)), key) == hi
    refused(cls, key, math.nextafter(hi, math.inf))


def values_inside(kind: type, meta: dict) -> st.SearchStrategy:
    if kind is int:
        return st.integers(int(meta["lo"]) + bool(meta["lo_open"]), int(meta["hi"]))
    return st.floats(meta["lo"], meta["hi"], exclude_min=meta["lo_open"])


def values_outside(kind: type, meta: dict) -> st.SearchStrategy:
    lo, hi = meta["lo"], meta["hi"]
    if kind is int:
        return st.integers(max_value=int(lo) - (not meta["lo_open"])) | st.integers(min_value=int(hi) + 1)
    finite = dict(allow_nan=False, allow_infinity=False)
    return (st.floats(max_value=lo, exclude_max=not meta["lo_open"], **finite)
            | st.floats(min_value=hi, exclude_min=True, **finite))


@pytest.mark.parametrize("cls, key, kind, meta", RANGED, ids=IDS)
@given(data=st.data())
def test_any_value_in_range_is_accepted_as_given(cls, key, kind, meta, data):
    value = data.draw(values_inside(kind, meta))
    assert stored(make(cls, key, value), key) == value


@pytest.mark.parametrize("cls, key, kind, meta", RANGED, ids=IDS)
@given(data=st.data())
def test_any_value_out_of_range_is_refused_naming_the_key(cls, key, kind, meta, data):
    refused(cls, key, data.draw(values_outside(kind, meta)))
