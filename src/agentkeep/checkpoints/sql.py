"""Every SQL statement of the checkpoints concern (the same text on both backends).

Ids use a code-point collation (see ``tables.py``), so ``ORDER BY checkpoint_id`` and
``checkpoint_id < ?`` mean what the framework means by newest and ``before``.
"""

CHECKPOINT_FIELDS = ("thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, "
                     "type, checkpoint, metadata, created_at")
WRITE_FIELDS = "task_id, idx, channel, type, value, task_path"
_KEY = "thread_id, checkpoint_ns, checkpoint_id"

# Putting a checkpoint again replaces it (as LangGraph's own savers do) but keeps the time
# it was first stored.
UPSERT_CHECKPOINT = (
    f"INSERT INTO checkpoints ({CHECKPOINT_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT ({_KEY}) DO UPDATE SET parent_checkpoint_id = excluded.parent_checkpoint_id, "
    "run_id = excluded.run_id, type = excluded.type, checkpoint = excluded.checkpoint, "
    "metadata = excluded.metadata"
)

# A task's write under an index already stored is kept (a retried task writes the same);
# special writes (negative index: error, interrupt, resume, scheduled) are replaced.
INSERT_WRITE_KEEP = (
    f"INSERT INTO checkpoint_writes ({_KEY}, {WRITE_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT ({_KEY}, task_id, idx) DO NOTHING"
)
INSERT_WRITE_REPLACE = (
    f"INSERT INTO checkpoint_writes ({_KEY}, {WRITE_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT ({_KEY}, task_id, idx) DO UPDATE SET channel = excluded.channel, "
    "type = excluded.type, value = excluded.value, task_path = excluded.task_path"
)

# The newest checkpoint of a thread and namespace: the last entry of the primary key.
SELECT_LATEST = (
    f"SELECT {CHECKPOINT_FIELDS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
    "ORDER BY checkpoint_id DESC LIMIT 1"
)
SELECT_CHECKPOINT = (
    f"SELECT {CHECKPOINT_FIELDS} FROM checkpoints "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
)
# The order LangGraph applies a super-step's writes in (``writes_sort_key``).
SELECT_WRITES = (
    f"SELECT {WRITE_FIELDS} FROM checkpoint_writes "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ? "
    "ORDER BY task_path, task_id, idx"
)

# list(): newest first; {where} is built from the filters, the last page's key is the cursor.
LIST_CHECKPOINTS = (
    f"SELECT {CHECKPOINT_FIELDS} FROM checkpoints{{where}} "
    "ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC LIMIT ?"
)
PAGE_CURSOR = "(checkpoint_id, thread_id, checkpoint_ns) < (?, ?, ?)"
# A metadata value that must equal a string: a prefilter, the exact test is in Python.
METADATA_TEXT = {
    "sqlite": "json_extract(metadata, ?) = ?",
    "postgresql": "(metadata ->> CAST(? AS text)) = ?",
}
# The writes of a page of checkpoints, in one query; {keys} is "(?, ?, ?), ..." per key.
SELECT_PAGE_WRITES = (
    f"SELECT {_KEY}, {WRITE_FIELDS} FROM checkpoint_writes "
    f"WHERE ({_KEY}) IN (VALUES {{keys}}) ORDER BY {_KEY}, task_path, task_id, idx"
)

DELETE_THREAD_WRITES = "DELETE FROM checkpoint_writes WHERE thread_id = ?"
DELETE_THREAD = "DELETE FROM checkpoints WHERE thread_id = ?"
DELETE_RUN_WRITES = (
    f"DELETE FROM checkpoint_writes WHERE ({_KEY}) IN "
    f"(SELECT {_KEY} FROM checkpoints WHERE run_id IN ({{ids}}))"
)
DELETE_RUNS = "DELETE FROM checkpoints WHERE run_id IN ({ids})"
DELETE_KEYS_WRITES = f"DELETE FROM checkpoint_writes WHERE ({_KEY}) IN (VALUES {{keys}})"
DELETE_KEYS = f"DELETE FROM checkpoints WHERE ({_KEY}) IN (VALUES {{keys}})"
COUNT_KEYS_WRITES = f"SELECT COUNT(*) FROM checkpoint_writes WHERE ({_KEY}) IN (VALUES {{keys}})"

THREAD_EXISTS = (
    "SELECT 1 FROM checkpoints WHERE thread_id = ? "
    "UNION ALL SELECT 1 FROM checkpoint_writes WHERE thread_id = ? LIMIT 1"
)
COPY_THREAD = (
    f"INSERT INTO checkpoints ({CHECKPOINT_FIELDS}) SELECT ?, checkpoint_ns, checkpoint_id, "
    "parent_checkpoint_id, run_id, type, checkpoint, metadata, created_at "
    "FROM checkpoints WHERE thread_id = ?"
)
COPY_THREAD_WRITES = (
    f"INSERT INTO checkpoint_writes ({_KEY}, {WRITE_FIELDS}) SELECT ?, checkpoint_ns, "
    f"checkpoint_id, {WRITE_FIELDS} FROM checkpoint_writes WHERE thread_id = ?"
)

# Threads by last activity, newest first.
LIST_THREADS = (
    "SELECT thread_id, COUNT(*), COUNT(DISTINCT checkpoint_ns), MIN(created_at), "
    "MAX(created_at) FROM checkpoints GROUP BY thread_id "
    "ORDER BY MAX(created_at) DESC, thread_id LIMIT ?"
)

# Retention: rank each thread and namespace's checkpoints newest first; the first
# keep_last are kept, of the rest those stored before the cutoff go.
PRUNE_CANDIDATES = (
    f"SELECT {_KEY} FROM (SELECT {_KEY}, created_at, ROW_NUMBER() OVER "
    "(PARTITION BY thread_id, checkpoint_ns ORDER BY checkpoint_id DESC) AS position "
    f"FROM checkpoints{{threads}}) ranked WHERE position > ?{{older}} ORDER BY {_KEY}"
)
