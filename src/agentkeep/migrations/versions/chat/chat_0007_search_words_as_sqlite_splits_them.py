"""PostgreSQL: index messages split into words as SQLite's tokenizer splits them.

PostgreSQL's parser kept e-mail addresses, hosts, file names, versions and decimals as
single tokens (``user@example.com``, ``app.py``, ``4.1``, ``3.14``), so a search for
``example``, ``app.py`` or ``3.14`` found nothing there while SQLite found the message.
Messages are now indexed with ASCII punctuation turned into spaces
(``sql.SEARCH_TEXT_POSTGRES``). The search index is derived data: this revision empties
it and queues every message, and the next search (or ``agentkeep optimize``) indexes
them again, on several connections for a long queue (about a minute per million
messages on a 2-core machine). The downgrade does the same for the older form. SQLite
is untouched.

Revision ID: chat_0007
Revises: chat_0006
"""

from alembic import op

revision = "chat_0007"
down_revision = "chat_0006"
branch_labels = None
depends_on = None


def _index_again() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("TRUNCATE message_search")
    op.execute("TRUNCATE search_backlog")
    op.execute("INSERT INTO search_backlog (pk) SELECT pk FROM messages")


def upgrade() -> None:
    _index_again()


def downgrade() -> None:
    _index_again()
