"""Column types shared by the concerns' table declarations (imported only to migrate).

Times are ISO-8601 UTC text on SQLite and ``timestamptz`` on PostgreSQL; JSON is text
on SQLite and ``json`` on PostgreSQL (``json``, not ``jsonb``, because jsonb rewrites
numbers such as 1e100 and reorders keys, and values must read back exactly as written).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, Text
from sqlalchemy.dialects.postgresql import JSON, TIMESTAMP

Time = Text().with_variant(TIMESTAMP(timezone=True), "postgresql")
Json = Text().with_variant(JSON(), "postgresql")
# SQLite only aliases the rowid for the exact type name INTEGER.
RowId = BigInteger().with_variant(Integer(), "sqlite")
