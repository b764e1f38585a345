"""What the app concern returns."""

from __future__ import annotations

from ..records import Record, column, json_column, time_column


class Setting(Record):
    """One setting: a dotted key, its namespace (before the first dot) and its value."""

    __slots__ = ()
    _fields = ("key", "namespace", "value", "updated_at")
    key = column(0)
    namespace = column(1)
    value = json_column(2)
    updated_at = time_column(3)
