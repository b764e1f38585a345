"""The app concern: settings (users, keys and providers come later)."""

#: Migration revisions of this concern, oldest first (checked against Alembic by a test).
REVISIONS = ("app_0001",)
