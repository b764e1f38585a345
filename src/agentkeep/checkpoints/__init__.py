"""The checkpoints concern: agent-framework checkpoints (graph state snapshots) and the
pending writes between them, per thread. ``AgentkeepSaver`` (LangGraph) stores here."""

#: Migration revisions of this concern, oldest first (checked against Alembic by a test).
REVISIONS = ("checkpoints_0001",)
