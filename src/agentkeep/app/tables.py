"""The app concern's schema (settings for now), declared for migrations and drift checks."""

from __future__ import annotations

from sqlalchemy import Column, Index, MetaData, Table, Text

from ..schema_types import Json, Time

metadata = MetaData()

settings = Table(
    "settings", metadata,
    Column("key", Text, primary_key=True),
    Column("namespace", Text, nullable=False),
    Column("value", Json, nullable=False),
    Column("updated_at", Time, nullable=False),
    Index("settings_by_namespace", "namespace", "key"),
)
