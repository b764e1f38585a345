"""PostgreSQL: index messages for search at the next search, not inside every append.

``to_tsvector`` and the GIN insert were ~80 % of the server's work for an append
(~115 µs of a ~125 µs insert for a 600-character message) and made bulk imports ~5x
slower than the same rows without search. The vectors move to their own table,
``message_search``, filled from ``search_backlog``: an insert trigger queues every new
message, and the next search (or ``catch_up_index()``, ``agentkeep optimize``) indexes
the queue in one statement first, so a committed message is still found by the next
search. The backlog is a table rather than a high-water mark because PostgreSQL's
sequence order is not commit order. SQLite already works this way (FTS5 and a mark).

Revision ID: chat_0003
Revises: chat_0002
"""

from alembic import op

revision = "chat_0003"
down_revision = "chat_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE TABLE message_search (pk BIGINT PRIMARY KEY REFERENCES messages (pk) "
               "ON DELETE CASCADE, search_vector tsvector NOT NULL)")
    op.execute("INSERT INTO message_search (pk, search_vector) "
               "SELECT pk, search_vector FROM messages")
    op.execute("CREATE INDEX message_search_vector ON message_search USING gin (search_vector)")
    op.execute("CREATE TABLE search_backlog (pk BIGINT PRIMARY KEY)")
    # Unqualified: resolved through the connection's search_path (the concern's schema),
    # so the function keeps working when a restore renames the schema.
    op.execute("CREATE FUNCTION queue_message_for_search() RETURNS trigger LANGUAGE plpgsql "
               "AS $$ BEGIN INSERT INTO search_backlog (pk) VALUES (NEW.pk); RETURN NULL; "
               "END $$")
    op.execute("CREATE TRIGGER messages_queue_for_search AFTER INSERT ON messages "
               "FOR EACH ROW EXECUTE FUNCTION queue_message_for_search()")
    op.execute("DROP INDEX messages_search")
    op.execute("ALTER TABLE messages DROP COLUMN search_vector")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
               "(to_tsvector('english', content)) STORED")
    op.execute("CREATE INDEX messages_search ON messages USING gin (search_vector)")
    op.execute("DROP TRIGGER messages_queue_for_search ON messages")
    op.execute("DROP FUNCTION queue_message_for_search()")
    op.execute("DROP TABLE search_backlog")
    op.execute("DROP TABLE message_search")
