"""Write the role and status CHECK constraints as ``OR`` chains instead of ``IN`` lists.

SQLite evaluates a CHECK of the form ``x IN ('a', 'b', 'c')`` (three values or more) by
building a temporary index of the list for every row it writes: 3.5-5 µs more per row
than no check, against ~0.4 µs for ``x = 'a' OR x = 'b' OR x = 'c'``, the same test
(``python -m benchmarks.check_constraints``). ``messages_role`` alone was
about a tenth of a bulk import's time per message (docs/performance.md, "Import").

SQLite cannot alter a constraint, and rebuilding ``messages`` would copy every message.
The expressions are swapped in the stored schema text instead: the procedure SQLite
documents for changes that leave the stored data alone (sqlite.org/lang_altertable.html,
"Making Other Kinds Of Table Schema Changes"), safe here because each new expression
accepts exactly the rows the old one did. PostgreSQL tests an ``IN`` list as an array
cheaply; its constraints are replaced too, so both backends hold the same schema.

Revision ID: chat_0005
Revises: chat_0004
"""

from alembic import op

revision = "chat_0005"
down_revision = "chat_0004"
branch_labels = None
depends_on = None

# (table, constraint, column, values), frozen as this revision writes them.
CHECKS = (
    ("sessions", "sessions_status", "status", ("active", "archived", "deleted")),
    ("messages", "messages_role", "role", ("system", "user", "assistant", "tool")),
    ("tool_calls", "tool_calls_status", "status",
     ("pending", "running", "succeeded", "failed", "cancelled")),
)


def _in_list(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _or_chain(column: str, values: tuple[str, ...]) -> str:
    return " OR ".join(f"{column} = {value!r}" for value in values)


def _swap(old_of, new_of) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table, name, column, values in CHECKS:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}, "
                       f"ADD CONSTRAINT {name} CHECK ({new_of(column, values)})")
        return
    edits = []
    for table, name, column, values in CHECKS:
        text = bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
            (table,)).scalar()
        old = f"CONSTRAINT {name} CHECK ({old_of(column, values)})"
        if old not in text:  # already in the new form, or altered by hand: leave it
            continue
        edits.append((text.replace(old, f"CONSTRAINT {name} CHECK "
                                        f"({new_of(column, values)})"), table))
    if not edits:
        return
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        for text, table in edits:
            bind.exec_driver_sql(
                "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                (text, table))
        # Every connection (this one included) reloads the schema when it sees the
        # version move, so none keeps evaluating the old expressions.
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    _swap(_in_list, _or_chain)


def downgrade() -> None:
    _swap(_or_chain, _in_list)
