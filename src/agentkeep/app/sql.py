"""Every SQL statement of the app concern."""

UPSERT_SETTING = (
    "INSERT INTO settings (key, namespace, value, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)
SELECT_SETTING = "SELECT value FROM settings WHERE key = ?"
DELETE_SETTING = "DELETE FROM settings WHERE key = ?"
LIST_SETTINGS = "SELECT key, value, updated_at FROM settings ORDER BY key"
LIST_NAMESPACE = "SELECT key, value, updated_at FROM settings WHERE namespace = ? ORDER BY key"
