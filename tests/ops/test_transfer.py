"""Export and import: round trips on both backends and between them, idempotence,
selections. The bad files are in test_transfer_bad_input.py, the CLI in
test_transfer_cli.py; both use the helpers here (:func:`fill`, :func:`dump`)."""

from __future__ import annotations

import gzip
import importlib
import io
import json
import sys
from datetime import datetime, timedelta, timezone

import pytest

import agentkeep
from agentkeep.concerns import CONCERNS
from agentkeep.demo import generate
from agentkeep.ops.transfer import (
    DERIVED_COLUMNS,
    FOOTER_KIND,
    HEADER_KIND,
    export_store,
    import_store,
)
from conftest import StoreFactory, postgres_or_skip

UTC = timezone.utc
BLOB = b"\x00\x01 shared bytes \xff" * 40


# --- helpers shared by the transfer tests ---------------------------------------------------

def fill(store: agentkeep.Store) -> dict[str, str]:
    """A realistic store: the demo sample plus every kind of row and awkward value."""
    generate(store, sessions=8, messages_per_session=8, seed=5)
    chat = store.chat
    odd = chat.create_session(
        title="Ünïcode ✓ \u2028 and \"quotes\"", provider="openai", model="gpt-4.1",
        system_prompt="Be brief.\nReally.",
        generation={"temperature": 0.7, "max_tokens": 256},
        metadata={"big": 10**30, "float": 1e100, "small": 5e-324, "neg": -0.0,
                  "nested": {"a": [1, {"b": None}], "c": "ß"}, "empty": {}})
    question = chat.append(odd.id, "user", "Line one\nline two\ttab \x01 ctrl ☃ 🎉 \\u0041")
    answer = chat.append(odd.id, "assistant", "Calling a tool", parts=[
        {"type": "text", "text": "Calling a tool"},
        {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {"q": "x", "n": 2}}],
        usage={"input_tokens": 5, "output_tokens": 7, "cached": 1}, cost=0.00123,
        provider="openai", model="gpt-4.1", finish_reason="tool_calls")
    chat.append(odd.id, "tool", "found", parts=[
        {"type": "tool_result", "call_id": "c1", "output": {"ok": True, "rows": [1, 2]}}])
    chat.edit(question.id, content="An edited question")  # a second branch
    chat.attach(answer.id, BLOB, filename="data.bin")
    chat.save_file(odd.id, "src/app.py", "print(1)\n", message_id=answer.id,
                   media_type="text/x-python")
    chat.save_file(odd.id, "src/app.py", "print(2)\n")
    chat.switch_branch(odd.id, next(b.leaf.id for b in chat.branches(odd.id)
                                    if not b.is_active))
    other = chat.create_session(title="shares a blob")
    note = chat.append(other.id, "user", "same bytes again")
    chat.attach(note.id, BLOB, filename="copy.bin")  # one blob, two attachments
    chat.set_summary(other.id, note.id)
    gone = chat.create_session(title="soft-deleted")
    chat.append(gone.id, "user", "bye")
    chat.delete_session(gone.id)
    archived = chat.create_session(title="archived")
    chat.append(archived.id, "user", "old")
    chat.archive_session(archived.id)
    chat.fork(odd.id, answer.id, title="a fork")
    # A sub-agent session whose id sorts before its parent's: the file holds it first.
    chat.create_session(id="zz-parent", title="parent")
    chat.create_session(id="aa-child", title="child", parent_id="zz-parent")
    chat.append("aa-child", "user", "child message")
    empty = chat.create_session(title="no messages")
    store.settings.set("ui.theme", "dark")
    store.settings.set("limits.max", 10**20)
    store.settings.set("misc.none", None)
    store.settings.set("misc.list", [1, "two", 3.5, {"x": []}])
    return {"odd": odd.id, "other": other.id, "gone": gone.id, "archived": archived.id,
            "empty": empty.id, "answer": answer.id}


def _kinds(concern: str) -> dict[str, dict[str, str]]:
    """table -> column -> time/json/blob, from the declared schema."""
    from sqlalchemy.dialects import postgresql

    metadata = importlib.import_module(f"agentkeep.{concern}.tables").metadata
    kinds: dict[str, dict[str, str]] = {}
    for table in metadata.tables.values():
        for column in table.columns:
            name = column.type.compile(dialect=postgresql.dialect()).upper()
            kind = ("time" if name.startswith("TIMESTAMP") else "json" if name == "JSON"
                    else "blob" if name == "BYTEA" else "")
            kinds.setdefault(table.name, {})[column.name] = kind
    return kinds


def _live_tables(store: agentkeep.Store, concern: str) -> dict[str, list[str]]:
    """Every table of the concern and its columns, read from the database itself, minus
    what is derived (search index, its high-water mark, revisions, messages.pk)."""
    backend = store._backend
    with backend.read(concern) as conn:
        if store.dialect == "sqlite":
            tables_sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
            virtual = [r[0] for r in conn.all(tables_sql + " AND sql LIKE 'CREATE VIRTUAL%'")]
            names = [r[0] for r in conn.all(tables_sql + " AND name NOT LIKE 'sqlite_%'")]
            names = [n for n in names if not any(n == v or n.startswith(v + "_") for v in virtual)]
            tables = {n: [r[0] for r in conn.all("SELECT name FROM pragma_table_info(?)", (n,))]
                      for n in names}
        else:
            tables = {}
            for name, column in conn.all(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND is_generated = 'NEVER' "
                    "ORDER BY table_name, ordinal_position"):
                tables.setdefault(name, []).append(column)
    # Derived: the revision, and the search index (SQLite's mark, PostgreSQL's vectors and
    # queue, keyed by pk, which differs between stores), and the derived columns.
    for derived in ("alembic_version", "search_state", "message_search", "search_backlog"):
        tables.pop(derived, None)
    for kind, columns in DERIVED_COLUMNS.items():  # messages.pk, sessions.active_second
        table = kind.split(".", 1)[1]
        if kind.startswith(f"{concern}.") and table in tables:
            tables[table] = [c for c in tables[table] if c not in columns]
    return tables


def dump(store: agentkeep.Store, *, raw: bool = False) -> dict[str, list]:
    """Every row of every table, sorted: times as UTC datetimes and JSON parsed, unless
    ``raw`` (the values exactly as the driver returns them, for same-dialect checks)."""
    result = {}
    for concern in CONCERNS:
        kinds = _kinds(concern)
        with store._backend.read(concern) as conn:
            for table, columns in _live_tables(store, concern).items():
                select = ", ".join(f'"{c}"' for c in columns)
                rows = []
                for row in conn.all(f'SELECT {select} FROM "{table}"'):
                    values = []
                    for column, value in zip(columns, row, strict=True):
                        kind = kinds.get(table, {}).get(column, "")
                        if value is not None and not raw:
                            if kind == "time":
                                value = (value if isinstance(value, datetime)
                                         else datetime.fromisoformat(value)).astimezone(UTC)
                            elif kind == "json":
                                value = json.loads(value)
                            elif kind == "blob":
                                value = bytes(value)
                        values.append(value)
                    rows.append(tuple(values))
                result[f"{concern}.{table}"] = sorted(rows, key=repr)
    return result


def export_bytes(store: agentkeep.Store, **options) -> bytes:
    out = io.BytesIO()
    export_store(store, out, **options)
    return out.getvalue()


def import_bytes(store: agentkeep.Store, data: bytes, name: str = "export.jsonl"):
    source = io.BytesIO(data)
    source.name = name
    return import_store(store, source)


@pytest.fixture
def factories(tmp_path):
    made: list[StoreFactory] = []

    def make(kind: str) -> StoreFactory:
        factory = StoreFactory(kind, tmp_path / f"s{len(made)}")
        made.append(factory)
        return factory

    yield make
    for factory in made:
        factory.cleanup()


def assert_counters_recount(store: agentkeep.Store) -> None:
    with store._backend.read("chat") as conn:
        ids = [r[0] for r in conn.all("SELECT id FROM sessions")]
    for session_id in ids:
        session = store.chat.get_session(session_id, include_deleted=True)
        assert (session.message_count, session.input_tokens, session.output_tokens,
                session.cost) == store.chat.recount(session_id)


def search_ids(store: agentkeep.Store, query: str) -> set[str]:
    return {hit.message.id for hit in store.chat.search(query, limit=1000)}


# --- round trips ----------------------------------------------------------------------------

def test_round_trip_sqlite_postgres_sqlite_is_identical_row_for_row(factories):
    postgres_or_skip()
    source = factories("sqlite").open()
    fill(source)
    first = export_bytes(source)

    middle = factories("postgres").open()
    summary = import_bytes(middle, first)
    assert summary.indexed == summary.messages > 50  # searchable once committed
    assert dump(middle) == dump(source)
    second = export_bytes(middle)
    # The files differ only in their headers (dialect, time of export).
    assert first.split(b"\n", 1)[1] == second.split(b"\n", 1)[1]

    back = factories("sqlite").open()
    summary = import_bytes(back, second)
    assert summary.indexed == summary.messages
    assert dump(back) == dump(source)
    assert dump(back, raw=True) == dump(source, raw=True)  # the very same text
    assert_counters_recount(back)
    assert_counters_recount(middle)
    for query in ("lisbon", "edited question", "tool"):
        assert search_ids(back, query) == search_ids(source, query)
    assert search_ids(middle, "edited question") == search_ids(source, "edited question")


def test_round_trip_on_one_backend(stores, factories):
    source = stores.open()
    ids = fill(source)
    data = export_bytes(source)
    target = factories(stores.backend).open()
    summary = import_bytes(target, data)
    assert dump(target) == dump(source)
    assert summary.sessions == len(dump(source)["chat.sessions"])
    assert summary.skipped == {}
    assert_counters_recount(target)
    assert target.chat.history(ids["odd"]) == source.chat.history(ids["odd"])
    assert target.chat.read_file(ids["odd"], "src/app.py") == b"print(2)\n"
    assert target.chat.get_session("aa-child").parent_id == "zz-parent"
    assert search_ids(target, "edited") == search_ids(source, "edited") != set()


def test_a_long_import_is_searchable_once_committed_and_nothing_stays_queued(stores,
                                                                            factories):
    """Past PARALLEL_QUEUE messages PostgreSQL indexes an import after its commit, on
    several connections: every message is indexed once and the queue ends empty."""
    from agentkeep.chat.search import PARALLEL_QUEUE

    total = PARALLEL_QUEUE + 1_234
    source = stores.open()
    session = source.chat.create_session()
    for start in range(0, total, 5_000):
        source.chat.append_many(session.id, [
            {"role": "user", "content": f"imported message number{n} tag{n % 7}"}
            for n in range(start, min(start + 5_000, total))])
    target = factories(stores.backend).open()
    summary = import_bytes(target, export_bytes(source))
    assert (summary.messages, summary.indexed, summary.index_error) == (total, total, None)
    assert target.chat.catch_up_index() == 0
    for n in (0, total // 2, total - 1):
        assert [hit.message.content for hit in target.chat.search(f"number{n}")] == [
            f"imported message number{n} tag{n % 7}"]
    assert len(target.chat.search("tag5", limit=10_000)) == len(range(5, total, 7))
    if stores.backend == "postgres":
        with target._backend.read("chat") as conn:
            assert conn.one("SELECT count(*) FROM search_backlog")[0] == 0


def test_postgres_indexing_that_fails_after_the_commit_keeps_the_import(factories):
    """The import is committed before PostgreSQL indexes it: an indexing failure is
    reported in the summary, loses nothing, and the next search indexes the messages."""
    postgres_or_skip()
    source = factories("sqlite").open()
    fill(source)
    data = export_bytes(source)
    target = factories("postgres").open()
    with target._backend.write("chat") as conn:  # indexing will find no table to fill
        conn.run("ALTER TABLE message_search RENAME TO message_search_away")
    summary = import_bytes(target, data)
    assert summary.messages > 50 and summary.indexed == 0
    assert "message_search" in summary.index_error
    with target._backend.write("chat") as conn:
        conn.run("ALTER TABLE message_search_away RENAME TO message_search")
    assert dump(target) == dump(source)
    assert search_ids(target, "edited question") == search_ids(source, "edited question")
    assert target.chat.catch_up_index() == 0


def test_file_layout(store):
    fill(store)
    lines = [json.loads(line) for line in export_bytes(store).splitlines()]
    header, footer, records = lines[0], lines[-1], lines[1:-1]
    assert header["kind"] == HEADER_KIND and header["format"] == 1
    assert set(header["revisions"]) == set(CONCERNS)
    assert footer["kind"] == FOOTER_KIND and footer["records"] == len(records)
    kinds = [r["kind"] for r in records]
    assert all(r["v"] == 1 for r in records)
    assert footer["counts"] == {k: kinds.count(k) for k in footer["counts"]}
    # Blobs first, then each session followed by what it owns, then the settings.
    last = {kind: i for i, kind in enumerate(kinds)}
    assert kinds.index("chat.sessions") > last["chat.blobs"]
    assert kinds.index("app.settings") > max(i for k, i in last.items() if k.startswith("chat."))
    current = None
    for record in records:
        row = record["row"]
        if record["kind"] == "chat.sessions":
            current = row["id"]
        elif "session_id" in row:
            assert row["session_id"] == current
    message = next(r["row"] for r in records if r["kind"] == "chat.messages")
    assert "pk" not in message and isinstance(message["parts"], list)
    assert isinstance(message["metadata"], dict) and message["created_at"].endswith("+00:00")
    blob = next(r["row"] for r in records if r["kind"] == "chat.blobs")
    assert isinstance(blob["data"], str)  # base64
    assert not any(k in ("chat.search_state", "chat.messages_fts") for k in kinds)


def test_import_twice_imports_once(stores, factories):
    source = stores.open()
    fill(source)
    data = export_bytes(source)
    target = factories(stores.backend).open()
    import_bytes(target, data)
    before = dump(target)
    again = import_bytes(target, data)
    assert again.written == {}
    assert again.sessions_skipped == len(before["chat.sessions"])
    assert again.skipped["chat.messages"] == len(before["chat.messages"])
    assert again.skipped["app.settings"] == len(before["app.settings"])
    assert dump(target) == before


def test_a_changed_session_is_a_conflict_and_nothing_is_imported(stores, factories):
    source = stores.open()
    ids = fill(source)
    data = export_bytes(source)
    target = factories(stores.backend).open()
    import_bytes(target, data)
    target.chat.append(ids["odd"], "user", "written after the import")
    before = dump(target)
    with pytest.raises(agentkeep.Conflict, match=rf"export.jsonl:\d+: session '{ids['odd']}'"):
        import_bytes(target, data)
    assert dump(target) == before


def _export_of_sessions(sessions: list[tuple[str, int]]) -> bytes:
    """An export file holding sessions (key, number of messages), in this order."""
    def line(kind: str, row: dict) -> str:
        return json.dumps({"kind": kind, "v": 1, "row": row}) + "\n"

    at = "2026-01-01T00:00:00.000000+00:00"
    out = [json.dumps({"kind": HEADER_KIND, "format": 1, "revisions": {},
                       "created_at": at, "selection": None, "concerns": ["chat"]}) + "\n"]
    counts = {"chat.sessions": 0, "chat.messages": 0}
    for key, length in sessions:
        ids = [f"{key}-{n}" for n in range(length)]
        out.append(line("chat.sessions", {
            "id": key, "status": "active", "head_id": ids[-1], "head_depth": length - 1,
            "message_count": length, "created_at": at, "updated_at": at, "active_at": at}))
        out.extend(line("chat.messages", {
            "id": ids[n], "session_id": key, "parent_id": ids[n - 1] if n else None,
            "seq": n + 1, "depth": n, "role": "user", "content": f"{key} {n}",
            "created_at": at}) for n in range(length))
        counts["chat.sessions"] += 1
        counts["chat.messages"] += length
    out.append(json.dumps({"kind": FOOTER_KIND, "records": sum(counts.values()),
                           "counts": counts}) + "\n")
    return "".join(out).encode()


@pytest.mark.parametrize("between", [1, 6000])  # 6000: the first copy is written first
def test_a_session_the_file_holds_twice_is_refused_and_nothing_is_imported(stores, between):
    """The importer reads the store's session keys once, at its first session; a session
    the file holds twice is refused, by the importer while its first copy is buffered,
    by the database once that copy was written, naming the second copy's line."""
    target = stores.open()
    kept = target.chat.create_session(title="already here")
    before = dump(target)
    data = _export_of_sessions([("twice", 2), ("other", between), ("twice", 2)])
    line = 1 + 3 + 1 + between + 1  # the second copy's session record
    if between < 5000:  # still buffered: the importer sees it
        with pytest.raises(agentkeep.InvalidInput,
                           match=rf"export.jsonl:{line}: .*'twice' appears twice in the file"):
            import_bytes(target, data)
    else:  # the first copy was written: the database refuses the second
        with pytest.raises(agentkeep.Conflict, match=rf"export.jsonl:{line}: .*'twice' "
                                                      "already exists in the store or the file"):
            import_bytes(target, data)
    assert dump(target) == before
    assert target.chat.get_session(kept.id).title == "already here"
    fine = import_bytes(target, _export_of_sessions([("once", 3), ("other", between)]))
    assert fine.written == {"chat.sessions": 2, "chat.messages": 3 + between}
    assert [m.content for m in target.chat.history("once")] == ["once 0", "once 1", "once 2"]


def test_a_different_setting_is_a_conflict_unless_left_out(stores, factories):
    source = stores.open()
    fill(source)
    data = export_bytes(source)
    target = factories(stores.backend).open()
    target.settings.set("ui.theme", "light")
    before = dump(target)
    with pytest.raises(agentkeep.Conflict, match="app.settings 'ui.theme'"):
        import_bytes(target, data)
    assert dump(target) == before
    source_io = io.BytesIO(data)
    summary = import_store(target, source_io, concerns=["chat"])
    assert "app.settings" not in summary.written
    assert target.settings.get("ui.theme") == "light"


def test_export_selected_sessions(stores, factories):
    source = stores.open()
    ids = fill(source)
    data = export_bytes(source, session_ids=[ids["odd"], ids["other"], "aa-child"])
    records = [json.loads(line) for line in data.splitlines()[1:-1]]
    sessions = {r["row"]["id"] for r in records if r["kind"] == "chat.sessions"}
    assert sessions == {ids["odd"], ids["other"], "aa-child"}
    assert not any(r["kind"].startswith("app.") for r in records)
    blobs = [r for r in records if r["kind"] == "chat.blobs"]
    assert {b["row"]["sha256"] for b in blobs} == {
        r["row"]["blob_sha256"] for r in records
        if r["kind"] in ("chat.attachments", "chat.file_versions")}
    target = factories(stores.backend).open()
    summary = import_bytes(target, data)
    # The child's parent was not exported: it is imported as if the parent were deleted.
    assert summary.detached_sessions == ["aa-child"]
    assert target.chat.get_session("aa-child").parent_id is None
    assert target.chat.history(ids["odd"]) == source.chat.history(ids["odd"])
    assert_counters_recount(target)
    # Importing the parent's export later leaves the child as it is (it is not changed).
    again = import_bytes(target, data)
    assert again.written == {}


def test_export_since(stores):
    store = stores.open()
    fill(store)
    cutoff = datetime.now(UTC) - timedelta(days=1)
    records = [json.loads(line) for line in export_bytes(store, since=cutoff).splitlines()]
    sessions = [r["row"] for r in records if r["kind"] == "chat.sessions"]
    assert sessions and all(datetime.fromisoformat(s["active_at"]) >= cutoff for s in sessions)
    every = [s for s in dump(store)["chat.sessions"]]
    assert len(sessions) < len(every)  # the demo's sessions were active weeks ago
    text = export_bytes(store, since=cutoff.isoformat())
    assert text.split(b"\n", 1)[1] == export_bytes(store, since=cutoff).split(b"\n", 1)[1]
    both = export_bytes(store, since=cutoff, session_ids=["aa-child"])
    assert [json.loads(x)["row"]["id"] for x in both.splitlines()
            if b'"chat.sessions"' in x[:30]] == ["aa-child"]


def test_bad_selections(store):
    fill(store)
    with pytest.raises(agentkeep.NotFound, match="nope"):
        export_bytes(store, session_ids=["nope"])
    with pytest.raises(agentkeep.InvalidInput, match="session_ids"):
        export_bytes(store, session_ids="one-id")
    with pytest.raises(agentkeep.InvalidInput, match="since"):
        export_bytes(store, since="yesterday")
    with pytest.raises(agentkeep.InvalidInput, match="since"):
        export_bytes(store, since=datetime(2025, 1, 1))
    with pytest.raises(agentkeep.InvalidInput, match="concerns"):
        export_bytes(store, concerns=["agents"])
    with pytest.raises(agentkeep.InvalidInput, match="concerns"):
        export_bytes(store, concerns=["app"], session_ids=["aa-child"])


def test_sources_text_gzip_and_path(store, tmp_path, factories):
    fill(store)
    data = export_bytes(store)
    text_out = io.StringIO()
    export_store(store, text_out)  # a text stream works too
    assert text_out.getvalue().split("\n", 1)[1] == data.decode().split("\n", 1)[1]
    path = tmp_path / "store.jsonl.gz"
    path.write_bytes(gzip.compress(data))
    target = factories("sqlite").open()
    calls = []
    summary = import_store(target, path, progress=lambda done, total: calls.append(done))
    assert summary.source == str(path) and summary.messages > 0
    assert calls and calls[-1] == len(data)
    other = factories("sqlite").open()
    import_store(other, io.StringIO(data.decode()))
    assert dump(other) == dump(target) == dump(store)


def test_export_progress_counts_records(store):
    fill(store)
    seen = []
    summary = export_store(store, io.BytesIO(), progress=lambda done, total: seen.append(
        (done, total)))
    assert seen[-1] == (summary.records + 2, summary.records + 2)


def test_empty_store_round_trip(stores, factories):
    store = stores.open()
    data = export_bytes(store)
    assert len(data.splitlines()) == 2
    summary = import_bytes(factories(stores.backend).open(), data)
    assert summary.records == 0 and summary.written == {}


def test_export_inside_a_transaction_sees_its_rows(store):
    with store.transaction():
        store.chat.create_session(title="not committed yet")
        data = export_bytes(store)
        assert store.chat.list_sessions().items  # the transaction is still usable
    assert b"not committed yet" in data


def test_imported_times_read_back_as_the_same_instants_in_utc(stores, factories):
    """Message times come back exactly, in UTC, whatever zone the file gave them in and
    whether or not they have a fraction of a second (PostgreSQL reads them as text)."""
    source = stores.open()
    session = source.chat.create_session()
    for text in ("one", "two", "three"):
        source.chat.append(session.id, "user", text)
    given = ["2026-01-02T03:04:05+00:00", "2026-01-02T08:34:05.5+05:30",
             "2026-01-02T03:04:05.000001Z"]
    expected = [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC),
                datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC)]
    lines = export_bytes(source).decode().splitlines()
    times = iter(given)
    for index, line in enumerate(lines):
        record = json.loads(line)
        if record["kind"] == "chat.messages":
            record["row"]["created_at"] = next(times)
            lines[index] = json.dumps(record)
    target = factories(stores.backend).open()
    import_bytes(target, ("\n".join(lines) + "\n").encode())
    read = target.chat.history(session.id)
    assert [m.created_at for m in read] == expected
    assert all(m.created_at.tzinfo is UTC for m in read)
    assert [target.chat.get_message(m.id).created_at for m in read] == expected
    assert [m.created_at for m in target.chat.history(session.id, last=2)] == expected[1:]


@pytest.mark.skipif(sys.version_info < (3, 11),
                    reason="Python 3.10's fromisoformat reads only the canonical form")
def test_imported_times_in_other_iso_shapes_are_stored_in_the_canonical_form(stores,
                                                                             factories):
    """A week date or a decimal comma has the stored form's length and offset, but sorts
    differently as text: stored re-formatted, the session list keeps its time order."""
    source = stores.open()
    early, late = source.chat.create_session(), source.chat.create_session()
    given = {early.id: "2024-W01-1T10:00:01+00:00",  # Monday 2024-01-01
             late.id: "2024-01-02T00:00:00,500000+00:00"}
    lines = export_bytes(source).decode().splitlines()
    for index, line in enumerate(lines):
        record = json.loads(line)
        if record["kind"] == "chat.sessions":
            record["row"]["active_at"] = given[record["row"]["id"]]
            lines[index] = json.dumps(record)
    target = factories(stores.backend).open()
    import_bytes(target, ("\n".join(lines) + "\n").encode())
    listed = target.chat.list_sessions().items
    assert [s.id for s in listed] == [late.id, early.id]
    assert [s.active_at for s in listed] == [datetime(2024, 1, 2, 0, 0, 0, 500000, tzinfo=UTC),
                                             datetime(2024, 1, 1, 10, 0, 1, tzinfo=UTC)]
