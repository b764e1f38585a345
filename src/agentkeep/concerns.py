"""The registry of concerns. A new concern is a folder like ``chat/`` plus one line here."""

CONCERNS: tuple[str, ...] = ("chat", "app", "checkpoints")
