"""Attachments (content-addressed, deduplicated) and per-session file history."""

from __future__ import annotations

import hashlib

import pytest
from chat_helpers import blob_count, snapshot

from agentkeep import InvalidInput, NotFound


@pytest.fixture
def message(store):
    session = store.chat.create_session()
    return store.chat.append(session.id, "user", "see attached")


# --- attachments ---------------------------------------------------------------------------


def test_attach_and_read_back(store, message):
    data = bytes(range(256)) * 4
    attachment = store.chat.attach(message.id, data, filename="blob.bin",
                                   media_type="application/x-test")
    assert attachment.message_id == message.id
    assert attachment.session_id == message.session_id
    assert attachment.filename == "blob.bin" and attachment.media_type == "application/x-test"
    assert attachment.size == len(data)
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert attachment.created_at.tzinfo is not None
    assert store.chat.read_attachment(attachment.id) == data
    assert store.chat.attachments(message.id) == [attachment]


def test_attach_text_bytearray_and_empty(store, message):
    text = store.chat.attach(message.id, "héllo 🙂", filename="t.txt", media_type="text/plain")
    assert store.chat.read_attachment(text.id) == "héllo 🙂".encode()
    assert text.size == len("héllo 🙂".encode())
    array = store.chat.attach(message.id, bytearray(b"abc"), filename="a")
    assert store.chat.read_attachment(array.id) == b"abc"
    assert array.media_type == "application/octet-stream"
    nul = store.chat.attach(message.id, "a\x00b", filename="nul")  # content, not a name
    assert store.chat.read_attachment(nul.id) == b"a\x00b"
    empty = store.chat.attach(message.id, b"", filename="empty")
    assert store.chat.read_attachment(empty.id) == b"" and empty.size == 0
    assert [a.id for a in store.chat.attachments(message.id)] == [text.id, array.id, nul.id,
                                                                 empty.id]


def test_identical_content_is_stored_once(store, message):
    other_session = store.chat.create_session()
    other = store.chat.append(other_session.id, "user", "me too")
    first = store.chat.attach(message.id, b"same bytes", filename="one.txt")
    second = store.chat.attach(message.id, b"same bytes", filename="two.txt")
    third = store.chat.attach(other.id, b"same bytes", filename="three.txt")
    store.chat.save_file(other_session.id, "same.txt", b"same bytes")
    assert first.id != second.id != third.id
    assert first.sha256 == second.sha256 == third.sha256
    assert blob_count(store) == 1
    # Purging one user keeps the blob for the others.
    store.chat.purge_session(message.session_id)
    assert store.chat.read_attachment(third.id) == b"same bytes"
    assert store.chat.read_file(other_session.id, "same.txt") == b"same bytes"
    assert blob_count(store) == 1
    store.chat.purge_session(other_session.id)
    assert blob_count(store) == 0


def test_attachments_of_unknown_things(store, message):
    with pytest.raises(NotFound):
        store.chat.attachments("no-such-message")
    with pytest.raises(NotFound):
        store.chat.read_attachment("missing")
    with pytest.raises(NotFound):
        store.chat.attach("missing", b"x", filename="x")


@pytest.mark.parametrize("kwargs", [
    {"data": 5, "filename": "x"},
    {"data": ["a"], "filename": "x"},
    {"data": None, "filename": "x"},
    {"data": b"x", "filename": ""},
    {"data": b"x", "filename": None},
    {"data": b"x", "filename": "nul\x00"},
    {"data": b"x", "filename": "x", "media_type": 5},
    {"data": "lone \ud800", "filename": "x"},
])
def test_attach_rejects_bad_arguments(store, message, kwargs):
    before = snapshot(store)
    with pytest.raises(InvalidInput):
        store.chat.attach(message.id, **kwargs)
    assert snapshot(store) == before
    assert store.chat.attachments(message.id) == []


def test_size_limit(stores):
    store = stores.open(max_blob_size=10)
    session = store.chat.create_session()
    message = store.chat.append(session.id, "user", "x")
    at_limit = store.chat.attach(message.id, b"0123456789", filename="ok")
    store.chat.save_file(session.id, "f.txt", "0123456789")
    before = snapshot(store)
    for data in (b"0123456789X", "ééééé" + "é"):  # 11 bytes; 12 bytes of UTF-8
        with pytest.raises(InvalidInput) as error:
            store.chat.attach(message.id, data, filename="big")
        assert error.value.field == "data"
        with pytest.raises(InvalidInput):
            store.chat.save_file(session.id, "f.txt", data)
    assert snapshot(store) == before
    assert store.chat.attachments(message.id) == [at_limit]
    assert len(store.chat.file_versions(session.id, "f.txt")) == 1
    assert blob_count(store) == 1


# --- file history --------------------------------------------------------------------------


def test_save_file_versions(store):
    session = store.chat.create_session()
    v1 = store.chat.save_file(session.id, "src/app.py", "print('one')\n",
                              media_type="text/x-python")
    assert (v1.path, v1.version, v1.session_id) == ("src/app.py", 1, session.id)
    assert v1.size == len("print('one')\n") and v1.media_type == "text/x-python"
    assert v1.sha256 == hashlib.sha256(b"print('one')\n").hexdigest()
    assert v1.message_id is None and v1.created_at.tzinfo is not None
    v2 = store.chat.save_file(session.id, "src/app.py", b"print('two')\n")
    assert v2.version == 2 and v2.media_type is None
    # Saving the same content as the latest version makes no new version.
    again = store.chat.save_file(session.id, "src/app.py", "print('two')\n")
    assert again == v2
    # Going back to older content is a change.
    v3 = store.chat.save_file(session.id, "src/app.py", "print('one')\n")
    assert v3.version == 3 and v3.sha256 == v1.sha256
    assert store.chat.file_versions(session.id, "src/app.py") == [v1, v2, v3]
    assert store.chat.read_file(session.id, "src/app.py") == b"print('one')\n"
    assert store.chat.read_file(session.id, "src/app.py", 1) == b"print('one')\n"
    assert store.chat.read_file(session.id, "src/app.py", 2) == b"print('two')\n"
    assert store.chat.read_file(session.id, "src/app.py", 3) == b"print('one')\n"


def test_files_lists_the_latest_version_of_each_path(store):
    session = store.chat.create_session()
    other = store.chat.create_session()
    store.chat.save_file(session.id, "b.txt", "b1")
    store.chat.save_file(session.id, "a.txt", "a1")
    latest_b = store.chat.save_file(session.id, "b.txt", "b2")
    latest_a = store.chat.save_file(session.id, "a.txt", "a1")  # unchanged: still version 1
    store.chat.save_file(other.id, "a.txt", "elsewhere")
    assert store.chat.files(session.id) == [latest_a, latest_b]
    assert [f.version for f in store.chat.files(session.id)] == [1, 2]
    assert [f.path for f in store.chat.files(other.id)] == ["a.txt"]
    assert store.chat.read_file(other.id, "a.txt") == b"elsewhere"
    assert store.chat.files(store.chat.create_session().id) == []


def test_file_linked_to_a_message(store):
    session = store.chat.create_session()
    message = store.chat.append(session.id, "assistant", "I edited the file")
    version = store.chat.save_file(session.id, "x.md", "# x", message_id=message.id)
    assert version.message_id == message.id
    other = store.chat.create_session()
    foreign = store.chat.append(other.id, "assistant", "not here")
    with pytest.raises(InvalidInput):
        store.chat.save_file(session.id, "x.md", "# y", message_id=foreign.id)
    with pytest.raises(NotFound):
        store.chat.save_file(session.id, "x.md", "# y", message_id="missing")
    assert store.chat.file_versions(session.id, "x.md") == [version]


def test_unknown_files_and_versions(store):
    session = store.chat.create_session()
    store.chat.save_file(session.id, "known.txt", "k")
    with pytest.raises(NotFound):
        store.chat.read_file(session.id, "unknown.txt")
    with pytest.raises(NotFound):
        store.chat.read_file(session.id, "known.txt", 2)
    with pytest.raises(NotFound):
        store.chat.read_file(session.id, "unknown.txt", 1)
    with pytest.raises(NotFound):
        store.chat.read_file("missing", "known.txt")
    with pytest.raises(NotFound):
        store.chat.save_file("missing", "known.txt", "x")
    with pytest.raises(NotFound):
        store.chat.files("missing")
    assert store.chat.file_versions(session.id, "unknown.txt") == []


def test_files_of_a_soft_deleted_session(store):
    session = store.chat.create_session()
    store.chat.save_file(session.id, "a", "x")
    store.chat.delete_session(session.id)
    for call in (lambda: store.chat.files(session.id),
                 lambda: store.chat.read_file(session.id, "a"),
                 lambda: store.chat.file_versions(session.id, "a"),
                 lambda: store.chat.save_file(session.id, "a", "y")):
        with pytest.raises(NotFound):
            call()
    store.chat.restore_session(session.id)
    assert store.chat.read_file(session.id, "a") == b"x"


@pytest.mark.parametrize("args, kwargs", [
    (("", "x"), {}),
    ((None, "x"), {}),
    ((5, "x"), {}),
    (("p", 5), {}),
    (("p", None), {}),
    (("p\x00", "x"), {}),
    (("p", "x"), {"media_type": 3}),
    (("p", "x"), {"message_id": 3}),
    (("p", "lone \udc80 surrogate"), {}),
    (("p", 3.5), {}),
])
def test_save_file_rejects_bad_arguments(store, args, kwargs):
    session = store.chat.create_session()
    before = snapshot(store)
    with pytest.raises(InvalidInput):
        store.chat.save_file(session.id, *args, **kwargs)
    assert snapshot(store) == before


@pytest.mark.parametrize("version", [0, -1, 1.0, "1", True])
def test_read_file_rejects_bad_versions(store, version):
    session = store.chat.create_session()
    store.chat.save_file(session.id, "a", "x")
    with pytest.raises(InvalidInput):
        store.chat.read_file(session.id, "a", version)
