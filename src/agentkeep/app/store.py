"""Settings: namespaced keys (``ui.theme``) holding typed JSON values.

A value reads back with the Python type it was written with: str, int, float, bool,
None, list or dict. The namespace is the part of the key before the first dot.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..backend import Backend
from ..codec import dump_json, now, shown
from ..errors import InvalidInput
from . import sql
from .models import Setting

CONCERN = "app"
_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_MISSING: Any = object()


def check_key(field: str, key: object) -> str:
    if not isinstance(key, str) or len(key) > 200 or not _KEY.fullmatch(key):
        raise InvalidInput(field, f"must be dotted names of letters, digits, _ or - "
                                  f"(e.g. 'ui.theme'), at most 200 characters; got {shown(key)}")
    return key


def namespace_of(key: str) -> str:
    return key.split(".", 1)[0] if "." in key else ""


class SettingsStore:
    """Application settings, reached as ``store.settings``."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def _stamp(self):
        stamp = now()
        return stamp.isoformat() if self._backend.dialect == "sqlite" else stamp

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is not set (read-only)."""
        check_key("key", key)
        with self._backend.read(CONCERN) as conn:
            row = conn.one(sql.SELECT_SETTING, (key,))
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        """Set ``key`` to a JSON value (commits).

        Raises:
            InvalidInput: a malformed key, or a value that JSON cannot hold exactly.
        """
        check_key("key", key)
        encoded = dump_json("value", value)
        with self._backend.write(CONCERN) as conn:
            conn.run(sql.UPSERT_SETTING, (key, namespace_of(key), encoded, self._stamp()))

    def delete(self, key: str) -> bool:
        """Remove ``key`` (commits); True if it was set."""
        check_key("key", key)
        with self._backend.write(CONCERN) as conn:
            return conn.run(sql.DELETE_SETTING, (key,)) > 0

    def list(self, namespace: str | None = None) -> list[Setting]:
        """Every setting, or those of one namespace (the part of a key before its first
        dot: ``ui`` for ``ui.theme``; ``""`` for keys without a dot), by key (read-only)."""
        if namespace is not None and namespace != "":
            check_key("namespace", namespace)
            if "." in namespace:
                raise InvalidInput("namespace", f"{namespace!r} holds a dot: a namespace is "
                                                "the part of a key before its first dot "
                                                f"({namespace_of(namespace)!r} here)")
        with self._backend.read(CONCERN) as conn:
            if namespace is None:
                rows = conn.all(sql.LIST_SETTINGS)
            else:
                rows = conn.all(sql.LIST_NAMESPACE, (namespace,))
        return [Setting((key, namespace_of(key), value, updated))
                for key, value, updated in rows]

    def transaction(self):
        """Group settings calls atomically; nested blocks are savepoints."""
        return self._backend.transaction(CONCERN)
