"""PostgreSQL: queue new messages for search once per statement, not once per row.

chat_0003's insert trigger ran a PL/pgSQL function for every message written. It now
runs once per statement and queues the statement's rows with one ``INSERT ... SELECT``
from the transition table: a batch (``append_many``'s COPY, an import) pays for one
call instead of one per message, ~5 % of a bulk append's time (200,000 messages in
W2-like batches, three alternating runs each); a single append costs the same. The
trigger keeps its name, so ``agentkeep check`` finds it as before. SQLite is untouched
(its search index follows a high-water mark, no trigger).

Revision ID: chat_0006
Revises: chat_0005
"""

from alembic import op

revision = "chat_0006"
down_revision = "chat_0005"
branch_labels = None
depends_on = None

# Unqualified names, as in chat_0003: resolved through the connection's search_path (the
# concern's schema), so the function keeps working when a restore renames the schema.
PER_ROW = (
    "CREATE FUNCTION queue_message_for_search() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN INSERT INTO search_backlog (pk) VALUES (NEW.pk); RETURN NULL; END $$",
    "CREATE TRIGGER messages_queue_for_search AFTER INSERT ON messages "
    "FOR EACH ROW EXECUTE FUNCTION queue_message_for_search()",
)
PER_STATEMENT = (
    "CREATE FUNCTION queue_messages_for_search() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN INSERT INTO search_backlog (pk) SELECT pk FROM new_messages; "
    "RETURN NULL; END $$",
    "CREATE TRIGGER messages_queue_for_search AFTER INSERT ON messages "
    "REFERENCING NEW TABLE AS new_messages "
    "FOR EACH STATEMENT EXECUTE FUNCTION queue_messages_for_search()",
)


def _replace_trigger(old_function: str, statements: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # IF EXISTS: a store whose trigger was dropped (agentkeep check reports it) is
    # repaired by this upgrade rather than stopped by it.
    op.execute("DROP TRIGGER IF EXISTS messages_queue_for_search ON messages")
    op.execute(f"DROP FUNCTION IF EXISTS {old_function}()")
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    _replace_trigger("queue_message_for_search", PER_STATEMENT)


def downgrade() -> None:
    _replace_trigger("queue_messages_for_search", PER_ROW)
