"""Create the app concern with its first table, settings.

Revision ID: app_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "app_0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types at this revision (never import live table code here).
TIME = sa.Text().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
JSON = sa.Text().with_variant(postgresql.JSON(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("settings_by_namespace", "settings", ["namespace", "key"], unique=False)


def downgrade() -> None:
    op.drop_table("settings")
