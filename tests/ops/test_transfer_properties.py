"""Property tests of export and import: any text and JSON the store accepts survives the
round trip, and a damaged file either imports or fails cleanly, changing nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_transfer import dump, export_bytes, import_bytes

import agentkeep
from conftest import StoreFactory

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=40)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12)
PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A source and a target SQLite store, shared by the examples (each uses new ids)."""
    factories = [StoreFactory("sqlite", tmp_path_factory.mktemp(name))
                 for name in ("source", "target")]
    try:
        yield factories[0].open(), factories[1].open()
    finally:
        for factory in factories:
            factory.cleanup()


def session_rows(store: agentkeep.Store, session_id: str) -> dict[str, list]:
    rows = dump(store)
    with store._backend.read("chat") as conn:
        messages = {r[0] for r in conn.all("SELECT id FROM messages WHERE session_id = ?",
                                           (session_id,))}
    return {"session": [r for r in rows["chat.sessions"] if r[0] == session_id],
            "messages": [r for r in rows["chat.messages"] if r[0] in messages]}


@PROPERTY
@given(title=st.none() | TEXT, contents=st.lists(TEXT, min_size=1, max_size=4),
       metadata=st.dictionaries(TEXT, JSON, max_size=4), value=JSON)
def test_any_value_the_store_accepts_round_trips(pair, title, contents, metadata, value):
    source, target = pair
    session = source.chat.create_session(title=title, metadata=metadata)
    source.chat.append_many(session.id, [
        {"role": "user", "content": text, "metadata": {"value": value}} for text in contents])
    data = export_bytes(source, session_ids=[session.id])
    summary = import_bytes(target, data)
    assert summary.messages == len(contents)
    assert session_rows(target, session.id) == session_rows(source, session.id)
    assert import_bytes(target, data).written == {}  # and only once


@pytest.fixture(scope="module")
def sample(pair) -> bytes:
    source, _ = pair
    session = source.chat.create_session(title="sample", metadata={"k": [1, 2.5, "x"]})
    source.chat.append(session.id, "user", "question ☃", metadata={"n": 1})
    source.chat.append(session.id, "assistant", "answer", usage={"input_tokens": 3},
                       parts=[{"type": "tool_call", "id": "c", "name": "t", "arguments": {}}])
    source.settings.set("prop.value", {"a": 1})
    return export_bytes(source, session_ids=[session.id], concerns=["chat", "app"])


@PROPERTY
@given(data=st.data())
def test_a_damaged_file_imports_or_changes_nothing(tmp_path_factory, sample, data):
    factory = StoreFactory("sqlite", tmp_path_factory.mktemp("damaged"))
    try:
        target = factory.open()
        target.settings.set("prop.other", True)
        before = dump(target)
        damaged = bytearray(sample)
        for _ in range(data.draw(st.integers(1, 3))):
            position = data.draw(st.integers(0, len(damaged) - 1))
            if data.draw(st.booleans()):
                damaged[position] = data.draw(st.integers(0, 255))
            else:
                del damaged[position:position + data.draw(st.integers(1, 40))]
        try:
            import_bytes(target, bytes(damaged))
        except (agentkeep.InvalidInput, agentkeep.Conflict) as exc:
            assert str(exc).startswith("export.jsonl:"), str(exc)
            assert dump(target) == before
        else:  # the damage left valid records: whatever they say was imported, in full
            records = [json.loads(line) for line in bytes(damaged).splitlines()[1:-1]]
            assert len(dump(target)["chat.messages"]) == sum(
                r["kind"] == "chat.messages" for r in records)
    finally:
        factory.cleanup()
