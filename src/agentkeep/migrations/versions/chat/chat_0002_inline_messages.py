"""PostgreSQL: keep message rows up to a page uncompressed.

A message row carries its search vector, so a message of ~1 KB passed PostgreSQL's
2 KB TOAST threshold and its content was compressed: every history read then
decompressed it (~20 % of the rows of a typical chat; the last 50 messages read ~30 %
slower). ``toast_tuple_target`` lets rows up to a page stay inline and uncompressed;
larger ones are compressed as before. Rows written before keep their form until
rewritten. SQLite stores rows uncompressed anyway: nothing to do.

Revision ID: chat_0002
Revises: chat_0001
"""

from alembic import op

revision = "chat_0002"
down_revision = "chat_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE messages SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE messages RESET (toast_tuple_target)")
