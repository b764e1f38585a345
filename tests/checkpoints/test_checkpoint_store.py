"""store.checkpoints: checkpoints, pending writes, listing, threads, copies and retention,
on both backends."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

import agentkeep
from agentkeep.checkpoints.store import PAGE_SIZE

UTC = timezone.utc


def put(store, thread_id: str, checkpoint_id: str, *, ns: str = "", parent=None, **fields):
    fields.setdefault("metadata", {"source": "loop", "step": int(checkpoint_id[-3:])})
    store.checkpoints.put(thread_id, checkpoint_id, type="msgpack",
                          data=f"{thread_id}/{ns}/{checkpoint_id}".encode() + b"\x00\xff",
                          checkpoint_ns=ns, parent_checkpoint_id=parent, **fields)


def ids(checkpoints) -> list[str]:
    return [c.checkpoint_id for c in checkpoints]


def chain(store, thread_id: str, count: int, *, ns: str = "", start: int = 1) -> list[str]:
    made, parent = [], None
    for number in range(start, start + count):
        checkpoint_id = f"cp-{number:03d}"
        put(store, thread_id, checkpoint_id, ns=ns, parent=parent)
        made.append(checkpoint_id)
        parent = checkpoint_id
    return made


def everything(store) -> list[dict]:
    """Every checkpoint with its writes: what a caller can tell about the concern."""
    return [c.to_dict() for c in store.checkpoints.list()]


def test_put_get_and_replace(store):
    put(store, "t", "cp-001", metadata={"source": "input", "step": -1, "pair": (1, 2)})
    put(store, "t", "cp-002", parent="cp-001", run_id="run-1")
    latest = store.checkpoints.get("t")
    assert (latest.checkpoint_id, latest.parent_checkpoint_id, latest.run_id) == \
        ("cp-002", "cp-001", "run-1")
    assert latest.data == b"t//cp-002\x00\xff" and latest.type == "msgpack"
    first = store.checkpoints.get("t", checkpoint_id="cp-001")
    assert first.metadata == {"source": "input", "step": -1, "pair": [1, 2]}
    assert first.created_at.tzinfo is not None and first.writes == ()
    assert store.checkpoints.get("t", checkpoint_id="cp-999") is None
    assert store.checkpoints.get("other") is None
    assert store.checkpoints.get("t", checkpoint_ns="child") is None

    store.checkpoints.put("t", "cp-001", type="json", data=b"new", metadata={"step": 9})
    again = store.checkpoints.get("t", checkpoint_id="cp-001")
    assert (again.type, again.data, again.metadata) == ("json", b"new", {"step": 9})
    assert again.created_at == first.created_at  # a replaced checkpoint keeps its time


def test_writes_are_ordered_kept_and_special_ones_replaced(store):
    put(store, "t", "cp-001")
    cps = store.checkpoints
    cps.put_writes("t", "cp-001", "task-b", [(0, "a", "json", b"1"), (1, "b", "json", b"2")],
                   task_path="~1")
    cps.put_writes("t", "cp-001", "task-a", [(0, "a", "json", b"3"), (-3, "__interrupt__",
                                                                      "json", b"i1")])
    cps.put_writes("t", "cp-001", "task-a", [(0, "a", "json", b"changed"),
                                              (-3, "__interrupt__", "json", b"i2")])
    writes = [(w.task_id, w.idx, w.channel, w.value, w.task_path)
              for w in cps.get("t").writes]
    assert writes == [("task-a", -3, "__interrupt__", b"i2", ""), ("task-a", 0, "a", b"3", ""),
                      ("task-b", 0, "a", b"1", "~1"), ("task-b", 1, "b", b"2", "~1")]
    listed = next(iter(cps.list("t")))
    assert listed.writes == cps.get("t").writes


def test_list_filters_order_and_pages(store):
    count = PAGE_SIZE * 2 + 17
    made = chain(store, "long", count)
    chain(store, "other", 3)
    chain(store, "long", 2, ns="child:1", start=900)
    cps = store.checkpoints

    assert ids(cps.list("long", checkpoint_ns="")) == made[::-1]
    assert len(list(cps.list("long"))) == count + 2
    everywhere = list(cps.list())
    assert [c.checkpoint_id for c in everywhere] == sorted(
        (c.checkpoint_id for c in everywhere), reverse=True)
    assert len(everywhere) == count + 5
    assert ids(cps.list("long", checkpoint_ns="", before=made[150], limit=3)) == \
        made[147:150][::-1]
    assert ids(cps.list("long", checkpoint_ns="", limit=0)) == []
    assert ids(cps.list("long", checkpoint_id=made[5])) == [made[5]]
    # A non-text filter is applied after the query: paging must still find every match.
    assert [(c.thread_id, c.checkpoint_id) for c in cps.list(metadata={"step": 2})] == \
        [("other", "cp-002"), ("long", "cp-002")]
    assert ids(cps.list("long", metadata={"step": 3, "source": "loop"})) == ["cp-003"]
    assert ids(cps.list("long", metadata={"source": "input"})) == []
    assert len(list(cps.list("long", metadata={"missing": None}))) == count + 2
    assert ids(cps.list("long", metadata={"step": 2}, limit=1)) == ["cp-002"]
    assert ids(cps.list("nobody")) == []


def test_text_filters_match_exact_json_values(store):
    put(store, "t", "cp-001", metadata={"source": "1", "x": "a'b\"c"})
    put(store, "t", "cp-002", metadata={"source": 1, "odd key": "v"})
    assert ids(store.checkpoints.list(metadata={"source": "1"})) == ["cp-001"]
    assert ids(store.checkpoints.list(metadata={"source": 1})) == ["cp-002"]
    assert ids(store.checkpoints.list(metadata={"x": "a'b\"c"})) == ["cp-001"]
    assert ids(store.checkpoints.list(metadata={"odd key": "v"})) == ["cp-002"]


def test_threads_copy_and_delete(store):
    chain(store, "a", 3)
    chain(store, "a", 1, ns="sub")
    chain(store, "b", 2)
    store.checkpoints.put_writes("b", "cp-002", "task", [(0, "c", "json", b"v")])
    threads = store.checkpoints.threads()
    assert [(t.thread_id, t.checkpoints, t.namespaces) for t in threads] == \
        [("b", 2, 1), ("a", 4, 2)]
    assert threads[0].last_at >= threads[0].first_at >= threads[1].first_at
    assert [t.thread_id for t in store.checkpoints.threads(limit=1)] == ["b"]

    assert store.checkpoints.copy_thread("b", "c") == 2
    copy, original = store.checkpoints.get("c"), store.checkpoints.get("b")
    assert (copy.data, copy.writes, copy.created_at) == \
        (original.data, original.writes, original.created_at)
    before = everything(store)
    with pytest.raises(agentkeep.Conflict, match="already has checkpoints"):
        store.checkpoints.copy_thread("a", "c")
    assert everything(store) == before
    assert store.checkpoints.copy_thread("nobody", "d") == 0

    assert store.checkpoints.delete_thread("b") == 2
    assert store.checkpoints.get("b") is None
    assert store.checkpoints.delete_thread("b") == 0
    assert [t.thread_id for t in store.checkpoints.threads()] == ["c", "a"]


def test_delete_runs_takes_their_writes(store):
    put(store, "t", "cp-001", run_id="r1")
    put(store, "t", "cp-002", run_id="r2")
    put(store, "u", "cp-003", run_id="r1", ns="child")
    store.checkpoints.put_writes("t", "cp-001", "task", [(0, "c", "json", b"v")])
    assert store.checkpoints.delete_runs(["r1", "r-none"]) == 2
    assert ids(store.checkpoints.list()) == ["cp-002"]
    store.checkpoints.put("t", "cp-001", type="json", data=b"")  # the id is free again
    assert store.checkpoints.get("t", checkpoint_id="cp-001").writes == ()
    assert store.checkpoints.delete_runs([]) == 0


def test_prune_keep_last_and_age(store):
    old = datetime.now(UTC) - timedelta(days=40)
    for number in range(1, 6):
        put(store, "a", f"cp-{number:03d}", created_at=old if number <= 3 else None)
    for number in range(1, 3):
        put(store, "a", f"cp-{number:03d}", ns="sub", created_at=old)
    put(store, "idle", "cp-001", created_at=old)
    for checkpoint_id in ("cp-001", "cp-004"):
        store.checkpoints.put_writes("a", checkpoint_id, "task", [(0, "c", "json", b"v")])
    cps = store.checkpoints
    before = everything(store)

    planned = cps.prune(keep_last=2, dry_run=True)
    assert (planned.checkpoints, planned.writes, planned.threads, planned.dry_run) == \
        (3, 1, 1, True)
    assert everything(store) == before  # a dry run changes nothing

    done = cps.prune(keep_last=2)
    assert (done.checkpoints, done.writes, done.threads, done.dry_run) == (3, 1, 1, False)
    assert ids(cps.list("a", checkpoint_ns="")) == ["cp-005", "cp-004"]
    assert ids(cps.list("a", checkpoint_ns="sub")) == ["cp-002", "cp-001"]
    assert cps.get("a", checkpoint_id="cp-004").writes != ()

    # keep_last=1 with an age trims old history but keeps every thread resumable.
    done = cps.prune(keep_last=1, older_than="30d")
    assert (done.checkpoints, done.threads) == (1, 1)
    assert ids(cps.list("a", checkpoint_ns="sub")) == ["cp-002"]
    assert ids(cps.list("a", checkpoint_ns="")) == ["cp-005", "cp-004"]  # recent ones stay
    # An age alone also removes threads idle that long, and only those.
    done = cps.prune(older_than=timedelta(days=30), thread_ids=["idle"])
    assert (done.checkpoints, done.threads) == (1, 1)
    assert [t.thread_id for t in cps.threads()] == ["a"]
    assert cps.prune(older_than="30d").checkpoints == 1  # a's old sub checkpoint
    assert cps.prune(keep_last=1, thread_ids=[]).checkpoints == 0


@pytest.mark.parametrize("call, field", [
    (lambda c: c.put("", "cp", type="t", data=b""), "thread_id"),
    (lambda c: c.put(7, "cp", type="t", data=b""), "thread_id"),
    (lambda c: c.put("t", "", type="t", data=b""), "checkpoint_id"),
    (lambda c: c.put("t", "cp", type="", data=b""), "type"),
    (lambda c: c.put("t", "cp", type="t", data="text"), "data"),
    (lambda c: c.put("t", "cp", type="t", data=b"", checkpoint_ns=None), "checkpoint_ns"),
    (lambda c: c.put("t", "cp", type="t", data=b"", metadata={"x": float("nan")}), "metadata"),
    (lambda c: c.put("t", "cp", type="t", data=b"", metadata={"x": object()}), "metadata"),
    (lambda c: c.put("t", "cp", type="t", data=b"", metadata={1: "x"}), "metadata"),
    (lambda c: c.put("t", "cp", type="t", data=b"", metadata=[1]), "metadata"),
    (lambda c: c.put("t", "cp", type="t", data=b"", created_at=datetime(2020, 1, 1)),
     "created_at"),
    (lambda c: c.put_writes("t", "cp-001", "task", [(0, "a", "t", b"ok"), (1, "b", "t", "x")]),
     "writes[1].value"),
    (lambda c: c.put_writes("t", "cp-001", "task", [(0, "a", "t", b"ok"), ("1", "b", "t", b"")]),
     "writes[1].idx"),
    (lambda c: c.put_writes("t", "cp-001", "", [(0, "a", "t", b"")]), "task_id"),
    (lambda c: c.put_writes("t", "cp-001", "task", [(0, "a")]), "writes[0]"),
    (lambda c: list(c.list(limit=-1)), "limit"),
    (lambda c: list(c.list(limit=True)), "limit"),
    (lambda c: list(c.list(metadata="source")), "metadata"),
    (lambda c: list(c.list(before="")), "before"),
    (lambda c: c.threads(limit=0), "limit"),
    (lambda c: c.delete_thread(""), "thread_id"),
    (lambda c: c.delete_runs("run"), "run_ids"),
    (lambda c: c.delete_runs(["ok", ""]), "run_ids[1]"),
    (lambda c: c.copy_thread("t", "t"), "target_thread_id"),
    (lambda c: c.prune(), "criteria"),
    (lambda c: c.prune(keep_last=0), "keep_last"),
    (lambda c: c.prune(keep_last=-1), "keep_last"),
    (lambda c: c.prune(older_than="10 days"), "older_than"),
    (lambda c: c.prune(keep_last=1, thread_ids="t"), "thread_ids"),
    (lambda c: c.prune(keep_last=1, dry_run="yes"), "dry_run"),
])
def test_bad_input_names_the_field_and_changes_nothing(store, call, field):
    chain(store, "t", 2)
    store.checkpoints.put_writes("t", "cp-001", "task", [(0, "a", "t", b"w")])
    before = everything(store)
    with pytest.raises(agentkeep.InvalidInput) as caught:
        call(store.checkpoints)
    assert caught.value.field == field
    assert everything(store) == before


def test_async_twin(stores):
    async def scenario():
        store = await stores.open_async()
        cps = store.checkpoints
        for number in range(1, 4):
            await cps.put("t", f"cp-{number:03d}", type="t", data=bytes([number]))
        await cps.put_writes("t", "cp-003", "task", [(0, "a", "t", b"w")])
        listed = [c.checkpoint_id async for c in cps.list("t", limit=2)]
        async with cps.transaction():
            await cps.delete_thread("t")
            inside = await cps.get("t")
        result = await cps.prune(keep_last=1, dry_run=True)
        return listed, inside, (await cps.threads()), result.checkpoints

    assert asyncio.run(scenario()) == (["cp-003", "cp-002"], None, [], 0)


def test_export_and_import_carry_checkpoints_across_backends(stores, tmp_path):
    import io

    from agentkeep.ops.transfer import export_store, import_store

    source = stores.open()
    chain(source, "t", 3)
    chain(source, "t", 1, ns="sub:1")
    source.checkpoints.put_writes("t", "cp-003", "task", [(0, "a", "t", b"\x00\x01"),
                                                           (-1, "__error__", "t", b"e")])
    out = io.BytesIO()
    summary = export_store(source, out)
    assert summary.counts["checkpoints.checkpoints"] == 4
    assert summary.counts["checkpoints.checkpoint_writes"] == 2
    path = tmp_path / "export.jsonl"
    path.write_bytes(out.getvalue())
    with agentkeep.open(tmp_path / "other") as target:  # SQLite, whatever the source
        import_store(target, path)
        assert everything(target) == everything(source)
        import_store(target, path)  # idempotent: identical rows are skipped
        assert everything(target) == everything(source)
