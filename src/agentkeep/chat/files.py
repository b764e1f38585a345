"""Attachments and per-session file history over content-addressed, deduplicated blobs."""

from __future__ import annotations

from datetime import datetime

from ..backend import Connection
from ..codec import check_id, check_limit, check_text, new_id, now
from ..errors import InvalidInput, NotFound
from . import sql
from .base import ChatBase
from .models import Attachment, FileVersion
from .rules import check_blob


class Files(ChatBase):
    """The attachment and file part of :class:`ChatStore`."""

    def _store_blob(self, conn: Connection, data: bytes, stamp: datetime) -> str:
        sha = _sha256(data)
        conn.run(sql.INSERT_BLOB[self._dialect], (sha, len(data), data, self._time(stamp)))
        return sha

    def _read_blob(self, conn: Connection, sha: str) -> bytes:
        row = conn.one(sql.SELECT_BLOB, (sha,))
        if row is None:  # pragma: no cover - foreign keys prevent it
            raise NotFound(f"blob {sha} is missing")
        return bytes(row[0])

    def attach(self, message_id: str, data: bytes | str, *, filename: str,
               media_type: str = "application/octet-stream") -> Attachment:
        """Attach content to a message (commits). Identical content is stored once."""
        check_id("message_id", message_id)
        data = check_blob("data", data, self._config.max_blob_size)
        check_text("filename", filename, max_length=4096)
        check_text("media_type", media_type, max_length=255)
        if not filename:
            raise InvalidInput("filename", "must not be empty")
        with self._write() as conn:
            session_id, _, _ = self._message_position(conn, "message_id", message_id)
            self._live_session(conn, session_id)
            stamp = now()
            sha = self._store_blob(conn, data, stamp)
            attachment_id = new_id()
            conn.run(sql.INSERT_ATTACHMENT, (attachment_id, session_id, message_id, sha,
                                             filename, media_type, len(data), self._time(stamp)))
            return Attachment(conn.one(sql.SELECT_ATTACHMENT, (attachment_id,)))

    def attachments(self, message_id: str) -> list[Attachment]:
        """The attachments of a message (read-only)."""
        check_id("message_id", message_id)
        with self._read() as conn:
            session_id = self._message_position(conn, "message_id", message_id)[0]
            self._live_session(conn, session_id)
            return [Attachment(r) for r in conn.all(sql.LIST_ATTACHMENTS, (message_id,))]

    def read_attachment(self, attachment_id: str) -> bytes:
        """An attachment's content (read-only). Raises NotFound."""
        check_id("attachment_id", attachment_id)
        with self._read() as conn:
            row = conn.one(sql.SELECT_ATTACHMENT, (attachment_id,))
            if row is None:
                raise NotFound(f"no attachment {attachment_id!r}")
            self._live_session(conn, row[1])
            return self._read_blob(conn, row[3])

    def save_file(self, session_id: str, path: str, data: bytes | str, *,
                  message_id: str | None = None, media_type: str | None = None) -> FileVersion:
        """Save a new version of a session's file (commits).

        Saving content identical to the latest version returns that version unchanged.
        """
        check_id("session_id", session_id)
        check_text("path", path, max_length=4096)
        if not path:
            raise InvalidInput("path", "must not be empty")
        data = check_blob("data", data, self._config.max_blob_size)
        check_id("message_id", message_id, optional=True)
        check_text("media_type", media_type, optional=True, max_length=255)
        with self._write() as conn:
            self._live_session(conn, session_id, lock=True)
            if message_id is not None:
                self._message_position(conn, "message_id", message_id, session_id)
            sha = _sha256(data)
            latest = conn.one(sql.LATEST_FILE_VERSION, (session_id, path))
            if latest is not None and latest[1] == sha:
                return FileVersion(conn.one(sql.SELECT_FILE_VERSION,
                                            (session_id, path, latest[0])))
            stamp = now()
            self._store_blob(conn, data, stamp)
            version = 1 if latest is None else latest[0] + 1
            conn.run(sql.INSERT_FILE_VERSION, (new_id(), session_id, path, version, sha,
                                               len(data), media_type, message_id,
                                               self._time(stamp)))
            return FileVersion(conn.one(sql.SELECT_FILE_VERSION, (session_id, path, version)))

    def files(self, session_id: str) -> list[FileVersion]:
        """The latest version of every file of a session, by path (read-only)."""
        check_id("session_id", session_id)
        with self._read() as conn:
            self._live_session(conn, session_id)
            return [FileVersion(r) for r in conn.all(sql.LIST_FILES, (session_id,))]

    def file_versions(self, session_id: str, path: str) -> list[FileVersion]:
        """Every version of one file, oldest first (read-only)."""
        check_id("session_id", session_id)
        check_text("path", path)
        with self._read() as conn:
            self._live_session(conn, session_id)
            return [FileVersion(r) for r in conn.all(sql.LIST_FILE_VERSIONS, (session_id, path))]

    def read_file(self, session_id: str, path: str, version: int | None = None) -> bytes:
        """A file's content at ``version`` (default: latest). Raises NotFound."""
        check_id("session_id", session_id)
        check_text("path", path)
        check_limit("version", version, maximum=2**62)
        with self._read() as conn:
            self._live_session(conn, session_id)
            if version is None:
                row = conn.one(sql.SELECT_LATEST_FILE, (session_id, path))
            else:
                row = conn.one(sql.SELECT_FILE_VERSION, (session_id, path, version))
            if row is None:
                raise NotFound(f"session {session_id!r} has no file {path!r}"
                               + (f" at version {version}" if version else ""))
            return self._read_blob(conn, row[4])


def _sha256(data: bytes) -> str:
    import hashlib  # loading OpenSSL costs ~10 ms of cold start; only files need it

    return hashlib.sha256(data).hexdigest()
