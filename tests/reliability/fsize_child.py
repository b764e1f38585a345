"""A writer under RLIMIT_FSIZE (test_failing_storage.py): ``fsize_child.py HOME SESSION
LIMIT``. Appends until the file size limit stops it, then prints what it committed and
the error it got, as JSON."""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

import agentkeep


def main(home: str, session_id: str, limit: int) -> None:
    store = agentkeep.open(home)
    # Ignored, SIGXFSZ no longer kills the process: write() fails with EFBIG instead,
    # as it fails with ENOSPC on a full disk.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    appended, error = [], None
    try:
        for _ in range(100_000):
            appended.append(store.chat.append(session_id, "user", os.urandom(2048).hex()).id)
    except Exception as exc:  # noqa: BLE001 - the parent judges the error type
        error = exc
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    store.close()
    print(json.dumps({"appended": appended, "error": type(error).__name__,
                      "message": str(error)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
