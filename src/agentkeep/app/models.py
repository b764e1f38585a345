"""What the app concern returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    namespace: str
    value: Any
    updated_at: datetime
