"""Settings: namespaced keys holding typed JSON values, on both backends."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentkeep import InvalidInput, Setting, StoreClosed

VALUES = {
    "str": "dark",
    "empty str": "",
    "unicode str": "naïve 東京 🙂",
    "int": 42,
    "zero": 0,
    "negative int": -7,
    "big int": 2**63 - 1,
    "float": 1.0,
    "small float": -0.000123,
    "huge float": 1e100,
    "true": True,
    "false": False,
    "none": None,
    "empty list": [],
    "list": [1, "a", None, 2.5, False],
    "empty dict": {},
    "dict": {"size": 14, "fonts": ["mono", "serif"], "nested": {"on": True, "ratio": 0.75}},
}


def same_types(a, b) -> bool:
    """Equal, and every value of the same type (True == 1 == 1.0 would hide a change)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same_types, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_types(a[k], b[k]) for k in a)
    if isinstance(a, float) and a == 0.0:
        return b == 0.0
    return a == b


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
def test_typed_round_trip(store, value):
    store.settings.set("test.value", value)
    read = store.settings.get("test.value", default="unset")
    assert read == value and same_types(read, value)
    (listed,) = store.settings.list("test")
    assert same_types(listed.value, value)


def test_set_get_delete(store):
    assert store.settings.get("ui.theme") is None
    assert store.settings.get("ui.theme", "light") == "light"
    store.settings.set("ui.theme", "dark")
    assert store.settings.get("ui.theme", "light") == "dark"
    store.settings.set("ui.theme", "solarized")  # overwrite
    assert store.settings.get("ui.theme") == "solarized"
    assert store.settings.delete("ui.theme") is True
    assert store.settings.delete("ui.theme") is False
    assert store.settings.get("ui.theme", "light") == "light"


def test_a_stored_none_is_not_the_default(store):
    store.settings.set("feature.flag", None)
    assert store.settings.get("feature.flag", default="missing") is None
    assert [s.key for s in store.settings.list("feature")] == ["feature.flag"]


def test_list_and_namespaces(store):
    for key, value in (("ui.theme", "dark"), ("ui.font.size", 14), ("llm.model", "gpt"),
                       ("plain", True), ("UI.theme", "other"), ("ui-x.y", 1)):
        store.settings.set(key, value)
    everything = store.settings.list()
    assert [s.key for s in everything] == sorted(
        ["ui.theme", "ui.font.size", "llm.model", "plain", "UI.theme", "ui-x.y"])
    assert all(isinstance(s, Setting) for s in everything)
    by_key = {s.key: s for s in everything}
    assert by_key["ui.font.size"].namespace == "ui"
    assert by_key["plain"].namespace == ""
    assert by_key["UI.theme"].namespace == "UI"
    assert by_key["ui.font.size"].value == 14
    assert all(isinstance(s.updated_at, datetime) and s.updated_at.tzinfo for s in everything)
    assert [s.key for s in store.settings.list("ui")] == ["ui.font.size", "ui.theme"]
    assert [s.key for s in store.settings.list("UI")] == ["UI.theme"]
    assert [s.key for s in store.settings.list("")] == ["plain"]
    assert store.settings.list("nothing") == []
    with pytest.raises(InvalidInput, match="part of a key before its first dot") as error:
        store.settings.list("ui.theme")  # a key, not a namespace: it found nothing
    assert error.value.field == "namespace"


def test_overwrite_moves_updated_at(store):
    store.settings.set("a.b", 1)
    (first,) = store.settings.list()
    store.settings.set("a.b", 2)
    (second,) = store.settings.list()
    assert second.value == 2 and second.updated_at >= first.updated_at


def test_settings_persist_across_opens(stores):
    stores.open().settings.set("ui.theme", "dark")
    assert stores.open().settings.get("ui.theme") == "dark"


BAD_KEYS = ["", ".", "a.", ".a", "a..b", "a b", "ü", "a/b", "a:b", "x" * 201, " ui", "ui\n",
            "a\x00", None, 5, b"ui", ["ui"]]


def test_bad_keys(store):
    store.settings.set("keep.me", 1)
    before = store.settings.list()
    for key in BAD_KEYS:
        for call in (lambda k=key: store.settings.get(k),
                     lambda k=key: store.settings.set(k, 1),
                     lambda k=key: store.settings.delete(k)):
            with pytest.raises(InvalidInput) as error:
                call()
            assert error.value.field == "key", key
    for namespace in ("a b", ".", "a/", 5, b"ui"):
        with pytest.raises(InvalidInput):
            store.settings.list(namespace)
    assert store.settings.list() == before


def test_longest_key(store):
    key = "k" * 200
    store.settings.set(key, "ok")
    assert store.settings.get(key) == "ok"


class Opaque:
    pass


@pytest.mark.parametrize("value", [
    {1, 2}, Opaque(), math.nan, math.inf, (1, 2), b"bytes", {1: "int key"},
    {"a": {"b": [float("-inf")]}}, "nul\x00", "lone \ud800", {"k\x00": 1}, datetime(2024, 1, 1),
    [10**5000], -(10**4001),
], ids=["set", "object", "nan", "inf", "tuple", "bytes", "int key", "nested inf", "nul",
        "surrogate", "nul key", "datetime", "5,000 digits", "4,002 digits"])
def test_values_json_cannot_hold_exactly(store, value):
    store.settings.set("ui.theme", "dark")
    with pytest.raises(InvalidInput) as error:
        store.settings.set("ui.theme", value)
    assert error.value.field == "value"
    with pytest.raises(InvalidInput):
        store.settings.set("ui.other", value)
    assert [(s.key, s.value) for s in store.settings.list()] == [("ui.theme", "dark")]


def test_an_integer_of_4000_digits_round_trips(store):
    store.settings.set("big.int", -(10**3999))
    assert store.settings.get("big.int") == -(10**3999)


def test_a_closed_store(stores):
    store = stores.open()
    store.settings.set("a.b", 1)
    store.close()
    for call in (lambda: store.settings.get("a.b"), lambda: store.settings.set("a.b", 2),
                 lambda: store.settings.delete("a.b"), lambda: store.settings.list()):
        with pytest.raises(StoreClosed):
            call()
    assert stores.open().settings.get("a.b") == 1


JSON_TEXT = st.one_of(st.text(), st.text(st.characters(exclude_categories=())))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | JSON_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(JSON_TEXT, children,
                                                                      max_size=4),
    max_leaves=16)


def storable(value) -> bool:
    if isinstance(value, str):
        return "\x00" not in value and not any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, list):
        return all(map(storable, value))
    if isinstance(value, dict):
        return all(storable(k) and storable(v) for k, v in value.items())
    return True


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES, key=st.from_regex(r"\A[A-Za-z0-9_-]{1,20}(\.[A-Za-z0-9_-]{1,20}){0,3}\Z"))
def test_any_json_value_round_trips_or_is_refused(store, value, key):
    store.settings.delete(key)
    if not storable(value):
        with pytest.raises(InvalidInput):
            store.settings.set(key, value)
        assert store.settings.get(key, "unset") == "unset"
        return
    store.settings.set(key, value)
    read = store.settings.get(key)
    assert read == value and same_types(read, value)
    namespace = key.split(".", 1)[0] if "." in key else ""
    assert key in {s.key for s in store.settings.list(namespace)}
