"""Migrations on both backends: up, down, up again; drift; newer stores; racing opens."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap

import pytest

import agentkeep
from agentkeep.backend import create_backend
from agentkeep.concerns import CONCERNS
from agentkeep.config import resolve
from agentkeep.migrations import alembic_ops, current_revision, known_revisions


def backend_for(stores):
    return create_backend(resolve(stores.target, **stores.options()), CONCERNS)


def test_revisions_constant_matches_alembic_chain():
    from alembic.script import ScriptDirectory

    for concern in CONCERNS:
        script = ScriptDirectory(str(alembic_ops.HERE),
                                 version_locations=[str(alembic_ops.HERE / "versions" / concern)])
        chain = [rev.revision for rev in script.walk_revisions()]
        assert tuple(reversed(chain)) == known_revisions(concern)


def test_up_down_up_keeps_working(stores):
    store = stores.open()
    session = store.chat.create_session(title="before")
    store.chat.append(session.id, "user", "hello migrations")
    store.settings.set("ui.theme", "dark")
    store.close()
    backend = backend_for(stores)
    try:
        for concern in CONCERNS:
            assert alembic_ops.status(backend, concern).is_current
            alembic_ops.downgrade(backend, concern, "base")
            assert current_revision(backend, concern) is None
            assert alembic_ops.status(backend, concern).pending == known_revisions(concern)
        with pytest.raises(agentkeep.SchemaOutOfDate, match="migrate up"):
            agentkeep.open(stores.target, migrate=False, **stores.options())
        for concern in CONCERNS:
            alembic_ops.upgrade(backend, concern)
            assert alembic_ops.drift(backend, concern) == []
    finally:
        backend.close()
    store = stores.open(migrate=False)
    assert store.chat.list_sessions().items == []  # downgrade to base dropped the data
    session = store.chat.create_session(title="after")
    store.chat.append(session.id, "user", "still searchable after migrations")
    assert [hit.message.session_id for hit in store.chat.search("searchable")] == [session.id]


def test_drift_is_reported(stores):
    stores.open().close()
    backend = backend_for(stores)
    try:
        with backend.write("app") as conn:
            conn.run("ALTER TABLE settings ADD COLUMN surprise TEXT")
            conn.run("DROP INDEX settings_by_namespace")
        findings = alembic_ops.drift(backend, "app")
        assert any("surprise" in line for line in findings), findings
        assert any("settings_by_namespace" in line for line in findings), findings
        assert alembic_ops.drift(backend, "chat") == []
    finally:
        backend.close()


def test_store_from_newer_agentkeep_is_refused_and_untouched(stores):
    store = stores.open()
    store.settings.set("kept", 1)
    store.close()
    backend = backend_for(stores)
    try:
        with backend.write("app") as conn:
            conn.run("UPDATE alembic_version SET version_num = 'app_9999'")
    finally:
        backend.close()
    for migrate in (True, False):
        with pytest.raises(agentkeep.SchemaOutOfDate, match="newer agentkeep"):
            agentkeep.open(stores.target, migrate=migrate, **stores.options())
    backend = backend_for(stores)
    try:
        with pytest.raises(agentkeep.SchemaOutOfDate):
            alembic_ops.upgrade(backend, "app")
        assert current_revision(backend, "app") == "app_9999"
        with backend.read("app") as conn:
            assert conn.one("SELECT value FROM settings WHERE key = 'kept'")[0] == "1"
    finally:
        backend.close()


def test_unknown_revision_target_is_invalid_input(stores):
    stores.open().close()
    backend = backend_for(stores)
    try:
        with pytest.raises(agentkeep.InvalidInput, match="not a chat revision"):
            alembic_ops.downgrade(backend, "chat", "chat_0042")
        assert alembic_ops.status(backend, "chat").is_current
    finally:
        backend.close()


def test_open_of_current_store_does_not_import_sqlalchemy(stores):
    stores.open().close()
    code = textwrap.dedent(f"""
        import sys, agentkeep
        agentkeep.open({str(stores.target)!r}, **{stores.options()!r}).close()
        print(sorted(m for m in ("sqlalchemy", "alembic") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def _open_and_write(target, options, index, barrier):
    barrier.wait()
    with agentkeep.open(target, **options) as store:
        store.settings.set(f"proc.p{index}", index)


# A lost race shows up only now and then (SQLite answered the first switch to WAL with
# an immediate "database is locked" in about one run in four), hence several attempts.
@pytest.mark.parametrize("attempt", range(4))
def test_many_processes_open_a_new_store_at_once(stores, attempt):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(6)
    processes = [context.Process(target=_open_and_write,
                                 args=(str(stores.target), stores.options(), i, barrier))
                 for i in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    store = stores.open(migrate=False)
    assert [s.value for s in store.settings.list("proc")] == list(range(6))
    backend = backend_for(stores)
    try:
        with backend.read("chat") as conn:
            assert conn.all("SELECT version_num FROM alembic_version") == [
                (known_revisions("chat")[-1],)]
    finally:
        backend.close()


def test_downgrade_of_a_newer_store_is_refused(stores):
    stores.open().close()
    backend = backend_for(stores)
    try:
        with backend.write("chat") as conn:
            conn.run("UPDATE alembic_version SET version_num = 'chat_0099'")
        with pytest.raises(agentkeep.SchemaOutOfDate, match="chat_0099"):
            alembic_ops.downgrade(backend, "chat")
    finally:
        backend.close()


def test_drift_check_neither_waits_for_nor_blocks_a_writer(stores):
    """`migrate check` and `check` read the schema: a long write transaction of the app
    must not make them wait (they once took the migration lock for up to 120 s)."""
    stores.open().close()
    holder = stores.open()
    backend = backend_for(stores)
    try:
        with holder.transaction():
            holder.chat.create_session(title="a writer holding its transaction")
            assert alembic_ops.drift(backend, "chat") == []
    finally:
        backend.close()


def _message_storage(backend, session_id):
    """(stored bytes, text bytes) of the session's message content; PostgreSQL only."""
    with backend.read("chat") as conn:
        return conn.one("SELECT pg_column_size(content), octet_length(content) FROM messages "
                        "WHERE session_id = ?", (session_id,))


def test_chat_0002_keeps_message_rows_inline_and_upgrades_a_chat_0001_store(stores):
    """A ~1.5 KB message plus its search vector passes PostgreSQL's 2 KB TOAST threshold;
    from chat_0002 its content stays uncompressed, and a chat_0001 store upgrades in place."""
    text = " ".join(f"word{i * 7919 % 10007}" for i in range(170))  # ~1.5 KB, compressible
    store = stores.open()
    kept = store.chat.create_session(title="written at chat_0001")
    store.close()
    backend = backend_for(stores)
    try:
        alembic_ops.downgrade(backend, "chat", "chat_0001")
        assert current_revision(backend, "chat") == "chat_0001"
        alembic_ops.upgrade(backend, "chat")
        assert current_revision(backend, "chat") == known_revisions("chat")[-1]
        assert alembic_ops.drift(backend, "chat") == []
    finally:
        backend.close()
    store = stores.open()
    assert store.chat.get_session(kept.id).title == "written at chat_0001"
    session = store.chat.create_session()
    store.chat.append(session.id, "user", text)
    assert store.chat.history(session.id)[0].content == text
    store.close()
    if stores.backend != "postgres":
        return  # SQLite never compresses rows
    backend = backend_for(stores)
    try:
        stored, length = _message_storage(backend, session.id)
        assert stored > length  # inline and uncompressed (a varlena header on top)
        alembic_ops.downgrade(backend, "chat", "chat_0001")  # without it: compressed
        with backend.write("chat") as conn:
            conn.run("UPDATE messages SET content = content || '' WHERE session_id = ?",
                     (session.id,))
        stored, length = _message_storage(backend, session.id)
        assert stored < length
    finally:
        backend.close()


def test_chat_0004_keeps_the_session_list_order_down_and_up(stores):
    """chat_0004 indexes the second of the last activity: a chat_0003 store upgrades in
    place with its list order intact; the downgrade works even with a trigger missing
    (which check reports); PostgreSQL's sessions get room for HOT updates."""
    store = stores.open()
    sessions = [store.chat.create_session(title=f"s{n}") for n in range(5)]
    store.chat.append(sessions[1].id, "user", "moves s1 to the top")
    expected = [s.id for s in store.chat.list_sessions().items]
    assert expected[0] == sessions[1].id
    store.close()
    backend = backend_for(stores)
    try:
        if stores.backend == "sqlite":
            with backend.write("chat") as conn:
                conn.run("DROP TRIGGER sessions_second_on_update")
        alembic_ops.downgrade(backend, "chat", "chat_0003")
        alembic_ops.upgrade(backend, "chat")
        assert alembic_ops.drift(backend, "chat") == []
        if stores.backend == "postgres":
            with backend.read("chat") as conn:
                options = conn.one("SELECT reloptions FROM pg_class WHERE oid = "
                                   "CAST('sessions' AS regclass)")[0]
            assert options == ["fillfactor=80"]
    finally:
        backend.close()
    store = stores.open()
    assert [s.id for s in store.chat.list_sessions().items] == expected
    store.chat.append(sessions[3].id, "user", "and now s3")
    assert store.chat.list_sessions().items[0].id == sessions[3].id
    paged, cursor = [], None
    while True:
        page = store.chat.list_sessions(limit=2, cursor=cursor)
        paged += [s.id for s in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert paged == [sessions[3].id] + [i for i in expected if i != sessions[3].id]


def _check_constraints(backend) -> str:
    """The stored text of the chat concern's CHECK constraints."""
    with backend.read("chat") as conn:
        if backend.dialect == "sqlite":
            rows = conn.all("SELECT sql FROM sqlite_master WHERE type = 'table' AND name IN "
                            "('sessions', 'messages', 'tool_calls')")
        else:
            rows = conn.all("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                            "contype = 'c' AND conrelid IN (CAST('sessions' AS regclass), "
                            "CAST('messages' AS regclass), CAST('tool_calls' AS regclass))")
    return "\n".join(text for (text,) in rows)


def test_chat_0005_rewrites_the_checks_and_they_still_refuse_bad_rows(stores):
    """chat_0005 writes the role and status checks as OR chains (an IN list costs SQLite a
    temporary index per row): a chat_0004 store upgrades in place, keeps its rows, and the
    database still refuses a role or status outside the lists, before and after."""
    store = stores.open()
    session = store.chat.create_session(title="kept")
    store.chat.append(session.id, "user", "written at chat_0004")
    store.close()
    backend = backend_for(stores)
    stamp = "2026-01-01T00:00:00+00:00" if stores.backend == "sqlite" else "2026-01-01"
    bad_rows = (
        ("INSERT INTO messages (id, session_id, seq, depth, role, created_at) "
         "VALUES ('bad', ?, 99, 0, 'robot', ?)", (session.id, stamp)),
        ("UPDATE sessions SET status = 'frozen' WHERE id = ?", (session.id,)),
    )

    def refused_bad_rows() -> None:
        for statement, params in bad_rows:
            with pytest.raises(agentkeep.Conflict), backend.write("chat") as conn:
                conn.run(statement, params)

    try:
        assert " IN (" not in _check_constraints(backend)
        assert "ANY (" not in _check_constraints(backend)
        refused_bad_rows()
        alembic_ops.downgrade(backend, "chat", "chat_0004")
        assert "role IN (" in _check_constraints(backend) \
            or "ANY (ARRAY['system'" in _check_constraints(backend)
        refused_bad_rows()
        alembic_ops.upgrade(backend, "chat")
        assert alembic_ops.drift(backend, "chat") == []
        assert "role = 'system' OR role = 'user'" in _check_constraints(backend) \
            or "(role = 'system'::text) OR" in _check_constraints(backend)
        refused_bad_rows()
    finally:
        backend.close()
    store = stores.open()
    assert [m.content for m in store.chat.history(session.id)] == ["written at chat_0004"]
    assert store.chat.get_session(session.id).title == "kept"
    store.close()


def _search_trigger_levels(backend) -> list[str]:
    """PostgreSQL: the level of each insert trigger on messages; SQLite: the schema text."""
    with backend.read("chat") as conn:
        if backend.dialect == "sqlite":
            return [sql for (sql,) in conn.all("SELECT sql FROM sqlite_master ORDER BY name")]
        rows = conn.all("SELECT tgname, tgtype & 1 FROM pg_trigger "
                        "WHERE tgrelid = CAST('messages' AS regclass) AND NOT tgisinternal")
    return [f"{name}: {'row' if per_row else 'statement'}" for name, per_row in rows]


def test_chat_0006_queues_for_search_per_statement(stores):
    """chat_0006 makes PostgreSQL's search-queue trigger run once per statement (SQLite:
    nothing changes). Messages written one at a time and in a COPY-sized batch are found
    by the next search at chat_0006, and so are those written under chat_0005's per-row
    trigger before an upgrade."""
    from agentkeep.chat import sql
    from agentkeep.codec import new_id

    store = stores.open()
    session = store.chat.create_session()

    def append_and_count(opened, word: str) -> int:
        opened.chat.append(session.id, "user", f"single {word}")
        opened.chat.append_many(session.id, [{"role": "user", "content": f"batch {word}"}
                                             for _ in range(30)])
        return len(opened.chat.search(word, limit=100))

    assert append_and_count(store, "alpha") == 31
    store.close()
    backend = backend_for(stores)
    try:
        after = _search_trigger_levels(backend)
        alembic_ops.downgrade(backend, "chat", "chat_0005")
        before = _search_trigger_levels(backend)
        stamp = "2026-01-01T00:00:00+00:00" if stores.backend == "sqlite" else "2026-01-01"
        rows = [(new_id(), session.id, None, 1000 + n, 0, "user", "bravo", "[]", stamp)
                for n in range(30)]
        with backend.write("chat") as conn:  # what a chat_0005 writer does
            conn.run(sql.INSERT_PLAIN_MESSAGE, rows[0])
            if stores.backend == "postgres":
                conn.copy(sql.COPY_PLAIN_MESSAGES, rows[1:])
            else:
                conn.many(sql.INSERT_PLAIN_MESSAGE, rows[1:])
        alembic_ops.upgrade(backend, "chat")
        assert alembic_ops.drift(backend, "chat") == []
        assert _search_trigger_levels(backend) == after
    finally:
        backend.close()
    if stores.backend == "postgres":
        assert (before, after) == (["messages_queue_for_search: row"],
                                   ["messages_queue_for_search: statement"])
    else:
        assert before == after
    store = stores.open()
    assert len(store.chat.search("bravo", limit=100)) == 30
    assert append_and_count(store, "charlie") == 31
    assert len(store.chat.search("alpha", limit=100)) == 31
    store.close()


def test_chat_0006_upgrades_a_store_whose_search_trigger_was_dropped(stores):
    """A store whose search trigger is missing (`agentkeep check --repair` makes it
    again) upgrades to chat_0006, which creates it, rather than failing on it."""
    stores.open().close()
    backend = backend_for(stores)
    try:
        alembic_ops.downgrade(backend, "chat", "chat_0005")
        if stores.backend == "postgres":
            with backend.write("chat") as conn:
                conn.run("DROP TRIGGER messages_queue_for_search ON messages")
            assert _search_trigger_levels(backend) == []
        alembic_ops.upgrade(backend, "chat")
        if stores.backend == "postgres":
            assert _search_trigger_levels(backend) == ["messages_queue_for_search: statement"]
    finally:
        backend.close()
    store = stores.open()
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "findable again")
    assert [hit.message.content for hit in store.chat.search("findable")] == ["findable again"]
    store.close()


def test_chat_0007_indexes_the_store_again_as_sqlite_splits_words(stores):
    """chat_0007 (PostgreSQL) indexes words as SQLite does: parts of an e-mail address,
    a file name or a decimal. Messages indexed the old way
    before the upgrade are indexed again by the next search."""
    store = stores.open()
    session = store.chat.create_session()
    texts = ["mail user@example.com", "open src/app.py", "un café noir"]
    for text in texts:
        store.chat.append(session.id, "user", text)
    store.chat.append(session.id, "user", "written at chat_0006 to py.example.org")
    backend = backend_for(stores)
    try:
        alembic_ops.downgrade(backend, "chat", "chat_0006")
        if stores.backend == "postgres":  # indexed as chat_0006's code did
            with backend.write("chat") as conn:
                conn.run("DELETE FROM search_backlog")
                conn.run("INSERT INTO message_search (pk, search_vector) "
                         "SELECT pk, to_tsvector('english', content) FROM messages")
        alembic_ops.upgrade(backend, "chat")
        assert alembic_ops.drift(backend, "chat") == []
    finally:
        backend.close()

    def found(query):
        return sorted(h.message.content for h in store.chat.search(query))

    assert found("example") == ["mail user@example.com",
                                "written at chat_0006 to py.example.org"]
    assert found("app.py") == ["open src/app.py"]
    assert found("café") == ["un café noir"]
    store.close()


def test_chat_0008_folds_accents_in_messages_indexed_before_it(stores):
    """chat_0008 (PostgreSQL) indexes with a configuration that folds accents: messages
    indexed before it with `english` are indexed again, those without accents stay."""
    store = stores.open()
    session = store.chat.create_session()
    for text in ("un café noir", "l'école", "plain words"):
        store.chat.append(session.id, "user", text)
    backend = backend_for(stores)
    try:
        alembic_ops.downgrade(backend, "chat", "chat_0007")
        if stores.backend == "postgres":  # indexed as chat_0007's code did
            with backend.write("chat") as conn:
                conn.run("DELETE FROM search_backlog")
                conn.run("DELETE FROM message_search")
                conn.run("INSERT INTO message_search (pk, search_vector) "
                         "SELECT pk, to_tsvector('english', content) FROM messages")
                assert conn.one("SELECT count(*) FROM pg_ts_config c JOIN pg_namespace n "
                                "ON n.oid = c.cfgnamespace WHERE n.nspname = current_schema() "
                                "AND c.cfgname = 'search_english'") == (0,)  # dropped
        alembic_ops.upgrade(backend, "chat")
        assert alembic_ops.drift(backend, "chat") == []
        if stores.backend == "postgres":  # the two with accents are queued again
            with backend.read("chat") as conn:
                assert conn.one("SELECT count(*) FROM search_backlog")[0] == 2
    finally:
        backend.close()

    def found(query):
        return sorted(h.message.content for h in store.chat.search(query))

    assert found("cafe") == ["un café noir"]
    assert found("ecole OR words") == ["l'école", "plain words"]
    assert found("café") == ["un café noir"]
    store.close()
