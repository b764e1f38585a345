"""PostgreSQL: search folds accents as SQLite's does (``cafe`` finds "café"), and finds
a message too long for one tsvector.

Messages are indexed, queries parsed and snippets marked with ``search_english``, a text
search configuration in the concern's schema: PostgreSQL's ``english`` with words that
hold letters beyond ASCII passed through the ``unaccent`` dictionary first
(``agentkeep_unaccent.unaccent``; ``sql.ENSURE_UNACCENT_POSTGRES`` installs the trusted
extension there, or makes the dictionary from wherever it is installed). Where the
extension cannot be had, the configuration is plain ``english`` and ``agentkeep check``
says that accents are not folded. Greek final sigma is indexed as sigma
(``sql.SEARCH_TEXT_POSTGRES``). Only messages with a character beyond ASCII can index
differently: their vectors are dropped and they are queued, indexed again by the next
search (or ``agentkeep optimize``). A message of more than 1 MB of distinct words made a
vector over PostgreSQL's limit and failed every search: the function
``search_vector_of_long_text`` (``sql.LONG_TEXT_VECTOR_POSTGRES``) indexes a message over
256 KB, as much of it as fits. The downgrade drops both and queues the accented messages
again for ``english``. SQLite is untouched.

Revision ID: chat_0008
Revises: chat_0007
"""

from alembic import op

from agentkeep.chat.sql import (
    ENSURE_UNACCENT_POSTGRES,
    LONG_TEXT_VECTOR_POSTGRES,
    MAKE_SEARCH_CONFIG_POSTGRES,
    REQUEUE_ACCENTED_POSTGRES,
    SEARCH_CONFIG_POSTGRES,
)

revision = "chat_0008"
down_revision = "chat_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(ENSURE_UNACCENT_POSTGRES)
    op.execute(MAKE_SEARCH_CONFIG_POSTGRES)
    op.execute(LONG_TEXT_VECTOR_POSTGRES)
    op.execute(REQUEUE_ACCENTED_POSTGRES)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS search_vector_of_long_text(text)")
    op.execute(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {SEARCH_CONFIG_POSTGRES}")
    op.execute(REQUEUE_ACCENTED_POSTGRES)
