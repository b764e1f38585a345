"""PostgreSQL: agentkeep's unaccent dictionary (chat_0008) across roles and servers.

Each test makes its own database (and roles), so the shared `agentkeep_unaccent` schema
of the test database is not involved; all of it is dropped afterwards.
"""

from __future__ import annotations

import uuid

import pytest

import agentkeep
from agentkeep.chat.sql import UNACCENT_SETUP
from agentkeep.ops.backup import backup
from agentkeep.ops.check import check
from agentkeep.ops.restore import restore
from conftest import postgres_or_skip

pytestmark = pytest.mark.postgres


@pytest.fixture
def server():
    """(admin, url of a new database for a role's name, make a role) on the test server."""
    import psycopg

    url = postgres_or_skip()
    base, _, _ = url.rpartition("/")
    name = f"akdict_{uuid.uuid4().hex[:10]}"
    roles: list[str] = []
    admin = psycopg.connect(url, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")

    def role() -> str:
        role_name = f"{name}_r{len(roles)}"
        admin.execute(f"CREATE ROLE {role_name} LOGIN")
        admin.execute(f"GRANT CREATE, CONNECT ON DATABASE {name} TO {role_name}")
        roles.append(role_name)
        return role_name

    def url_for(user: str = "postgres") -> str:
        return f"{base.replace('postgres@', f'{user}@')}/{name}"

    try:
        yield url_for, role
    finally:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        for role_name in roles:
            admin.execute(f"DROP ROLE {role_name}")
        admin.close()


def _folds(store) -> bool:
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "un café noir")
    return [hit.message.content for hit in store.chat.search("cafe")] == ["un café noir"]


def test_stores_of_two_roles_both_fold_accents(server):
    """The first role makes the shared dictionary; the second must be able to use it
    (it could neither create nor upgrade a store before the schema was opened to all)."""
    url_for, role = server
    first, second = role(), role()
    with agentkeep.open(url_for(first), schema_prefix="first") as store:
        assert _folds(store) and check(store).is_clean
    with agentkeep.open(url_for(second), schema_prefix="second") as store:
        assert _folds(store) and check(store).is_clean


def test_a_dictionary_the_role_cannot_use_is_a_note_and_restore_says_what_to_run(
        server, tmp_path):
    """An administrator made the schema without opening it: the store still works (accents
    not folded), check says what to run; a backup of a folding store cannot be restored
    by that role and the error says the same; nothing is changed."""
    import psycopg

    url_for, role = server
    with agentkeep.open(url_for(), schema_prefix="folding") as store:  # as postgres
        assert _folds(store)
        saved = backup(store, tmp_path / "backups").path
    user = role()
    with psycopg.connect(url_for(), autocommit=True) as admin:
        admin.execute("REVOKE ALL ON SCHEMA agentkeep_unaccent FROM PUBLIC")
        for concern in ("chat", "app", "checkpoints"):  # the backup's schema names free
            admin.execute(f"DROP SCHEMA IF EXISTS folding_{concern} CASCADE")
    with agentkeep.open(url_for(user), schema_prefix="plain") as store:
        assert not _folds(store)
        report = check(store)
        assert report.is_clean
        assert any("does not fold accents" in note and UNACCENT_SETUP in note
                   for note in report.notes), report.notes
    with pytest.raises(agentkeep.StoreUnavailable, match="unaccent") as raised:
        restore(url_for(user), saved, force=True, schema_prefix="plain")
    assert UNACCENT_SETUP in str(raised.value) and "not changed" in str(raised.value)
    with agentkeep.open(url_for(user), schema_prefix="plain") as store:
        assert [s.title for s in store.chat.list_sessions().items] == [None]
