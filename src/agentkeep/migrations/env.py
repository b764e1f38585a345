"""Alembic environment: runs inside the connection that agentkeep opened and locked."""

from alembic import context

from agentkeep.migrations.alembic_ops import run_in_context

run_in_context(context)
