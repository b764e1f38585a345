"""Order the session list by the second of last activity, so an append rarely moves it.

``sessions_by_activity`` indexed ``(active_at, id)``, and every append sets
``active_at``: each append deleted the session's index entry and inserted a new one.
On SQLite that wrote ~2.4 more WAL pages per commit when many sessions take turns (7.1
instead of 4.8 in W1, measured by ``benchmarks.append_anatomy``); on PostgreSQL it made
every session update a non-HOT update, with a new entry in each of the table's indexes.

The index now holds ``active_second``, ``active_at`` truncated to the UTC second, which
changes at most once a second per session. The list orders by ``(active_second,
active_at, id)``: the same order as before, since the second is a function of the time;
the database sorts only the sessions active within the same second. SQLite keeps the
column in step with triggers (an ``UPDATE`` that names an indexed column rewrites its
index entry even when the value is unchanged, so the column cannot simply be set on
every append); PostgreSQL computes it as a stored generated column, and a lower fill
factor leaves room on the page for the HOT updates this allows.

Revision ID: chat_0004
Revises: chat_0003
"""

from alembic import op

# The triggers as this revision creates them (chat/sql.py; `agentkeep check --repair`
# re-creates missing ones). A later change to them needs a revision of its own.
from agentkeep.chat.sql import ACTIVE_SECOND_TRIGGERS

revision = "chat_0004"
down_revision = "chat_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX sessions_by_activity")
    if op.get_bind().dialect.name == "postgresql":
        # Fill factor first: adding the stored column rewrites the table, and the rewrite
        # then leaves the room on every page, not only on pages written afterwards.
        op.execute("ALTER TABLE sessions SET (fillfactor = 80)")
        op.execute("ALTER TABLE sessions ADD COLUMN active_second timestamp GENERATED ALWAYS "
                   "AS (date_trunc('second', active_at AT TIME ZONE 'UTC')) STORED")
    else:
        op.execute("ALTER TABLE sessions ADD COLUMN active_second TEXT")
        op.execute("UPDATE sessions SET active_second = substr(active_at, 1, 19)")
        for trigger in ACTIVE_SECOND_TRIGGERS.values():
            op.execute(trigger)
    op.execute("CREATE INDEX sessions_by_activity ON sessions (active_second)")


def downgrade() -> None:
    op.execute("DROP INDEX sessions_by_activity")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sessions RESET (fillfactor)")
    else:
        for trigger in ACTIVE_SECOND_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")  # check may find one missing
    op.execute("ALTER TABLE sessions DROP COLUMN active_second")
    op.execute("CREATE INDEX sessions_by_activity ON sessions (active_at, id)")
