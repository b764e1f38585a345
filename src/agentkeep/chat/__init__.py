"""The chat concern: sessions, messages (a tree), tool calls, files and search."""

#: Migration revisions of this concern, oldest first (checked against Alembic by a test).
REVISIONS = ("chat_0001", "chat_0002", "chat_0003", "chat_0004", "chat_0005",
             "chat_0006", "chat_0007", "chat_0008")
