"""AgentkeepSaver beyond the conformance suite: bad input, thread id forms, opening and
closing stores, retention and thread listing through the saver, on both backends."""

from __future__ import annotations

import asyncio
import uuid

import pytest

pytest.importorskip("langgraph.checkpoint.base")

from langgraph.checkpoint.base import empty_checkpoint  # noqa: E402

import agentkeep  # noqa: E402
from agentkeep.integrations.langgraph import AgentkeepSaver  # noqa: E402


def config(thread_id="t", checkpoint_id=None, ns=""):
    configurable = {"thread_id": thread_id, "checkpoint_ns": ns}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def put(saver, thread_id="t", parent=None, **metadata):
    checkpoint = empty_checkpoint()
    return saver.put(config(thread_id, parent), checkpoint,
                     {"source": "loop", "step": 0, **metadata}, {})


def snapshot(store):
    return [c.to_dict() for c in store.checkpoints.list()]


@pytest.mark.parametrize("call, field", [
    (lambda s, c: s.put(config(""), empty_checkpoint(), {}, {}), "thread_id"),
    (lambda s, c: s.put(config(None), empty_checkpoint(), {}, {}), "thread_id"),
    (lambda s, c: s.put(config(1.5), empty_checkpoint(), {}, {}), "thread_id"),
    (lambda s, c: s.put(config(True), empty_checkpoint(), {}, {}), "thread_id"),
    (lambda s, c: s.put({"configurable": {}}, empty_checkpoint(), {}, {}), "thread_id"),
    (lambda s, c: s.put({}, empty_checkpoint(), {}, {}), "config"),
    (lambda s, c: s.put("t", empty_checkpoint(), {}, {}), "config"),
    (lambda s, c: s.put(config(ns=3), empty_checkpoint(), {}, {}), "checkpoint_ns"),
    (lambda s, c: s.put(config(), {"no": "id"}, {}, {}), "checkpoint"),
    (lambda s, c: s.put(config(), empty_checkpoint(), None, {}), "metadata"),
    (lambda s, c: s.put(config(), empty_checkpoint(), {"x": float("inf")}, {}), "metadata"),
    (lambda s, c: s.put_writes(config(), [("a", 1)], "task"), "checkpoint_id"),
    (lambda s, c: s.put_writes(c, [("a", 1), ("b",)], "task"), "writes[1]"),
    (lambda s, c: s.put_writes(c, [("a", 1)], ""), "task_id"),
    (lambda s, c: s.put_writes(c, 5, "task"), "writes"),
    (lambda s, c: list(s.list(config(), limit=-1)), "limit"),
    (lambda s, c: list(s.list(config(), limit="2")), "limit"),
    (lambda s, c: list(s.list(config(), filter=["source"])), "metadata"),
    (lambda s, c: list(s.list(config(), before={"x": 1})), "before"),
    (lambda s, c: s.get_tuple(config("")), "thread_id"),
    (lambda s, c: s.delete_thread(""), "thread_id"),
    (lambda s, c: s.delete_for_runs("run"), "run_ids"),
    (lambda s, c: s.copy_thread("t", ""), "target_thread_id"),
    (lambda s, c: s.prune(["t"], strategy="keep_some"), "strategy"),
    (lambda s, c: s.prune("t"), "thread_ids"),
    (lambda s, c: s.retain(keep_last=-1), "keep_last"),
    (lambda s, c: s.threads(limit=-1), "limit"),
])
def test_bad_input_is_invalid_input_and_changes_nothing(store, call, field):
    saver = AgentkeepSaver(store)
    stored = put(saver)
    saver.put_writes(stored, [("ch", "value")], "task")
    before = snapshot(store)
    with pytest.raises(agentkeep.InvalidInput) as caught:
        call(saver, stored)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert snapshot(store) == before


def test_async_bad_input_changes_nothing(store):
    saver = AgentkeepSaver(store)
    stored = put(saver)
    before = snapshot(store)

    async def attempts():
        with pytest.raises(agentkeep.InvalidInput, match="limit"):
            [t async for t in saver.alist(config(), limit=-3)]
        with pytest.raises(agentkeep.InvalidInput, match="writes"):
            await saver.aput_writes(stored, [("a", 1), "b"], "task")
        with pytest.raises(agentkeep.InvalidInput, match="thread_id"):
            await saver.aput(config(""), empty_checkpoint(), {}, {})

    asyncio.run(attempts())
    assert snapshot(store) == before


def test_unserialisable_value_is_the_serializers_error_and_writes_nothing(store):
    saver = AgentkeepSaver(store)
    stored = put(saver)
    before = snapshot(store)
    with pytest.raises(TypeError):
        saver.put_writes(stored, [("a", 1), ("b", lambda: None)], "task")
    assert snapshot(store) == before


def test_int_and_uuid_thread_ids_are_stored_as_text(store):
    saver = AgentkeepSaver(store)
    thread = uuid.uuid4()
    returned = put(saver, thread_id=42)
    assert returned["configurable"]["thread_id"] == 42
    put(saver, thread_id=thread)
    assert saver.get_tuple(config(42)).config["configurable"]["thread_id"] == "42"
    assert saver.get_tuple(config("42")) is not None
    assert saver.get_tuple(config(str(thread))) is not None
    assert {t.thread_id for t in saver.threads()} == {"42", str(thread)}


def test_metadata_from_the_config_is_kept_and_filterable(store):
    saver = AgentkeepSaver(store)
    saver.put({"configurable": {"thread_id": "t", "checkpoint_ns": "", "user": "ann"},
               "metadata": {"tenant": "acme", "score": 3, "skip": object()}},
              empty_checkpoint(), {"source": "input", "step": -1,
                                   "counters": {"messages": (1, 2)}}, {})
    [listed] = saver.list(None, filter={"tenant": "acme", "score": 3})
    assert listed.metadata == {"source": "input", "step": -1, "counters": {"messages": [1, 2]},
                               "user": "ann", "tenant": "acme", "score": 3}
    assert list(saver.list(None, filter={"tenant": "other"})) == []


def test_retain_and_threads_through_the_saver(store):
    saver = AgentkeepSaver(store)
    parent = None
    for _ in range(4):
        parent = put(saver, "a", parent["configurable"]["checkpoint_id"] if parent else None)
    put(saver, "b")
    assert [(t.thread_id, t.checkpoints) for t in saver.threads()] == [("b", 1), ("a", 4)]
    assert saver.retain(keep_last=2, dry_run=True).checkpoints == 2
    assert saver.retain(keep_last=2).checkpoints == 2
    assert [(t.thread_id, t.checkpoints) for t in saver.threads()] == [("b", 1), ("a", 2)]
    assert asyncio.run(saver.aretain(keep_last=1)).checkpoints == 1
    assert [t.thread_id for t in asyncio.run(saver.athreads(limit=1))] == ["b"]
    saver.prune(["a", "b"], strategy="delete")
    assert saver.threads() == []


def test_opening_and_closing(stores, tmp_path, monkeypatch):
    if stores.backend == "sqlite":
        with AgentkeepSaver(path_or_url=tmp_path / "own") as saver:
            put(saver)
            owned = saver.store
        assert owned.is_closed  # the saver closed the store it opened
        monkeypatch.setenv("AGENTKEEP_HOME", str(tmp_path / "home"))
        with AgentkeepSaver() as saver:
            assert saver.store.location == str(tmp_path / "home")
    store = stores.open()
    with AgentkeepSaver(store) as saver:
        put(saver)
    assert not store.is_closed  # a store given to the saver stays open
    assert len(snapshot(store)) == 1
    with pytest.raises(agentkeep.InvalidInput, match="store"):
        AgentkeepSaver(store, path_or_url=tmp_path)
    with pytest.raises(agentkeep.InvalidInput, match="store"):
        AgentkeepSaver("not a store")
    store.close()
    with pytest.raises(agentkeep.StoreClosed):
        AgentkeepSaver(store).get_tuple(config())


def test_copy_thread_to_an_existing_thread_is_a_conflict(store):
    saver = AgentkeepSaver(store)
    put(saver, "a")
    put(saver, "b")
    before = snapshot(store)
    with pytest.raises(agentkeep.Conflict):
        saver.copy_thread("a", "b")
    assert snapshot(store) == before
