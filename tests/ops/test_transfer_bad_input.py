"""Bad export files: each is refused with InvalidInput naming the file, the line and the
field, and the store it was imported into is exactly as it was, on both backends."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from test_transfer import dump, export_bytes, fill, import_bytes

import agentkeep
from conftest import StoreFactory

NAME = "export.jsonl"


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> list[bytes]:
    """A valid export of a filled SQLite store, as lines (each ending with a newline)."""
    factory = StoreFactory("sqlite", tmp_path_factory.mktemp("source"))
    try:
        store = factory.open()
        fill(store)
        return export_bytes(store).splitlines(keepends=True)
    finally:
        factory.cleanup()


def first(lines: list[bytes], kind: str) -> int:
    """The 0-based index of the first record of ``kind``."""
    return next(i for i, line in enumerate(lines) if json.loads(line)["kind"] == kind)


def edit(lines: list[bytes], index: int, change, *, ascii: bool = False) -> list[bytes]:
    record = json.loads(lines[index])
    change(record)
    copy = list(lines)
    copy[index] = json.dumps(record, ensure_ascii=ascii).encode() + b"\n"
    return copy


def row_set(**values):
    def change(record):
        record["row"].update(values)
    return change


def message(lines):
    return first(lines, "chat.messages")


def session_of_first_message(lines):
    return first(lines, "chat.sessions")


def first_with(kind, words, **values):
    """A case: the first record of ``kind`` with ``values`` set, refused at its line."""
    return (lambda ls: edit(ls, first(ls, kind), row_set(**values)),
            lambda ls: first(ls, kind), words)


CASES = {
    # name: (build the bad lines from the good ones, the 0-based line it must name, words)
    "a line that is not JSON": (
        lambda ls: [*ls[:4], b'{"kind": "chat.messages", "v": 1, "row": {\n', *ls[5:]],
        lambda ls: 4, "is not JSON"),
    "a line nested too deeply for the JSON parser": (
        lambda ls: [*ls[:4], b'{"kind": "chat.messages", "v": 1, "row": '
                    + b"[" * 100_000 + b"]" * 100_000 + b"}\n", *ls[5:]],
        lambda ls: 4, "nested too deeply"),
    "a kind nested deeply": (
        lambda ls: edit(ls, 3, lambda r: r.update(kind=[[[[[[[[[["x"]]]]]]]]]])),
        lambda ls: 3, "unknown record kind [[[["),
    "an unknown kind": (
        lambda ls: edit(ls, 3, lambda r: r.update(kind="chat.unicorns")),
        lambda ls: 3, "unknown record kind 'chat.unicorns'"),
    "an unknown version": (
        lambda ls: edit(ls, 3, lambda r: r.update(v=2)),
        lambda ls: 3, "unknown record version 2"),
    "a missing header": (
        lambda ls: ls[1:], lambda ls: 0, "must be the header"),
    "a truncated file (no footer)": (
        lambda ls: ls[:-1], lambda ls: len(ls) - 2, "ends without its footer"),
    "a file cut in the middle of a line": (
        lambda ls: [*ls[:-3], ls[-3][: len(ls[-3]) // 2]], lambda ls: len(ls) - 3,
        "is not JSON"),
    "a message referencing a missing session": (
        lambda ls: edit(ls, message(ls), row_set(session_id="no-such-session")),
        message, "chat.messages.session_id: session 'no-such-session' has no chat.sessions"),
    "a tool call referencing a missing message": first_with(
        "chat.tool_calls", "chat.tool_calls.message_id:", message_id="no-such"),
    "a message whose parent is not in its session": (
        lambda ls: edit(ls, message(ls) + 1, row_set(parent_id="elsewhere")),
        lambda ls: message(ls) + 1, "chat.messages.parent_id:"),
    "a text column holding a number": (
        lambda ls: edit(ls, message(ls), row_set(content=42)),
        message, "chat.messages.content: must be a string, got an integer"),
    "an integer column holding a string": (
        lambda ls: edit(ls, message(ls), row_set(seq="1")),
        message, "chat.messages.seq: must be an integer"),
    "a time that is not a time": (
        lambda ls: edit(ls, message(ls), row_set(created_at="yesterday")),
        message, "chat.messages.created_at: must be an ISO-8601 time"),
    "a time without a zone": (
        lambda ls: edit(ls, message(ls), row_set(created_at="2025-01-01T10:00:00")),
        message, "chat.messages.created_at:"),
    "an unknown column": (
        lambda ls: edit(ls, message(ls), row_set(colour="blue")),
        message, "chat.messages.colour: is not a column"),
    "a missing required column": (
        lambda ls: edit(ls, message(ls), lambda r: r["row"].pop("role")),
        message, "chat.messages.role: is required"),
    "a role the schema refuses": (
        lambda ls: edit(ls, message(ls), row_set(role="robot")),
        message, "chat.messages.role: must be one of system, user, assistant, tool, "
                 "got 'robot'"),
    "a session status the schema refuses": (
        lambda ls: edit(ls, session_of_first_message(ls), row_set(status="zombie")),
        session_of_first_message, "chat.sessions.status: must be one of active, archived, "
                                  "deleted"),
    "a tool call status the schema refuses": first_with(
        "chat.tool_calls", "chat.tool_calls.status: must be one of", status="done"),
    "a session whose counters disagree with its messages": (
        lambda ls: edit(ls, session_of_first_message(ls),
                        lambda r: r["row"].update(message_count=r["row"]["message_count"] + 1)),
        session_of_first_message, "chat.sessions.message_count:"),
    "a blob whose hash does not match": (
        lambda ls: edit(ls, first(ls, "chat.blobs"),
                        row_set(data=base64.b64encode(b"other bytes").decode())),
        lambda ls: first(ls, "chat.blobs"), "chat.blobs.sha256: is not the SHA-256"),
    "a blob that is not base64": first_with(
        "chat.blobs", "chat.blobs.data: must be base64", data="not base64!"),
    "a header from a newer schema": (
        lambda ls: edit(ls, 0, lambda r: r["revisions"].update(chat="chat_9999")),
        lambda ls: 0, "revisions.chat: revision 'chat_9999' is newer"),
    "a newer file format": (
        lambda ls: edit(ls, 0, lambda r: r.update(format=2)),
        lambda ls: 0, "format: format 2"),
    "a footer whose counts differ": (
        lambda ls: edit(ls, len(ls) - 1, lambda r: r["counts"].update({"chat.messages": 1})),
        lambda ls: len(ls) - 1, "counts:"),
    "a NUL character in text": (
        lambda ls: edit(ls, message(ls), row_set(content="a\x00b")),
        message, "chat.messages.content: contains a NUL"),
    "a lone surrogate in JSON": (
        lambda ls: edit(ls, message(ls), row_set(metadata={"x": "\ud800"}), ascii=True),
        message, "chat.messages.metadata: contains a lone surrogate"),
    "bytes that are not UTF-8": (
        lambda ls: [*ls[:5], b'{"kind": "\xff"}\n', *ls[6:]], lambda ls: 5, "is not UTF-8"),
    "a record after the footer": (
        lambda ls: [*ls, ls[3]], lambda ls: len(ls), "comes after the footer"),
    "parts that are not an array (the API refuses them; readers would trip)": (
        lambda ls: edit(ls, message(ls), row_set(parts="notalist")),
        message, "chat.messages.parts: must be an array of parts, got a string"),
    "a part that is not an object": (
        lambda ls: edit(ls, message(ls), row_set(parts=[1])),
        message, "chat.messages.parts: parts[0]: must be a dict with a 'type'"),
    "a tool call part without a name": (
        lambda ls: edit(ls, message(ls), row_set(parts=[{"type": "tool_call", "id": "c"}])),
        message, "chat.messages.parts: parts[0].name: must be a string"),
    "message metadata that is not an object": (
        lambda ls: edit(ls, message(ls), row_set(metadata="notadict")),
        message, "chat.messages.metadata: must be an object, got a string"),
    "usage that is not an object": (
        lambda ls: edit(ls, message(ls), row_set(usage="x")),
        message, "chat.messages.usage: must be an object, got a string"),
    "a session's generation that is not an object": (
        lambda ls: edit(ls, session_of_first_message(ls), row_set(generation=[1, 2])),
        session_of_first_message, "chat.sessions.generation: must be an object, got an array"),
    "a session's metadata that is not an object": (
        lambda ls: edit(ls, session_of_first_message(ls), row_set(metadata="x")),
        session_of_first_message, "chat.sessions.metadata: must be an object"),
    "a record that is not an object": (
        lambda ls: [*ls[:3], b"[1, 2]\n", *ls[4:]], lambda ls: 3, "must be a JSON object"),
    # Values the API refuses: a session with an id no call accepts could be listed but
    # never shown, exported or deleted.
    "an empty session id": (
        lambda ls: edit(ls, session_of_first_message(ls), row_set(id="")),
        session_of_first_message, "chat.sessions.id: must be a non-empty id string"),
    "a session id longer than an id may be": (
        lambda ls: edit(ls, session_of_first_message(ls), row_set(id="s" * 201)),
        session_of_first_message, "chat.sessions.id: must be at most 200 characters"),
    "an empty message id": (
        lambda ls: edit(ls, message(ls), row_set(id="")),
        message, "chat.messages.id: must be a non-empty id string"),
    "a tool call with an empty name": first_with(
        "chat.tool_calls", "chat.tool_calls.name: must not be empty", name=""),
    "a tool call with an empty call id": first_with(
        "chat.tool_calls", "chat.tool_calls.call_id: must be a non-empty", call_id=""),
    "a negative retry count": first_with(
        "chat.tool_calls", "chat.tool_calls.retry_count: must be between 0 and", retry_count=-1),
    "a negative duration": first_with(
        "chat.tool_calls", "chat.tool_calls.duration_ms: must be between 0 and", duration_ms=-5),
    "a message at seq 0": (
        lambda ls: edit(ls, message(ls), row_set(seq=0)),
        message, "chat.messages.seq: must be between 1 and"),
    "a seq twice in one session": (
        lambda ls: edit(ls, message(ls) + 1,
                        row_set(seq=json.loads(ls[message(ls)])["row"]["seq"])),
        lambda ls: message(ls) + 1, "chat.messages.seq: 1 appears twice in the session"),
    "more tokens than a message may count": (
        lambda ls: edit(ls, message(ls), row_set(input_tokens=10**12 + 1)),
        message, "chat.messages.input_tokens: must be between 0 and 1,000,000,000,000"),
    "a time before year 1 in UTC": (
        lambda ls: edit(ls, message(ls), row_set(created_at="0001-01-01T00:00:00+01:00")),
        message, "chat.messages.created_at: is out of range in UTC"),
    "a time after year 9999 in UTC": (
        lambda ls: edit(ls, session_of_first_message(ls),
                        row_set(created_at="9999-12-31T23:59:59-01:00")),
        session_of_first_message, "chat.sessions.created_at: is out of range in UTC"),
    "a negative cost": (
        lambda ls: edit(ls, message(ls), row_set(cost_nanos=-1)),
        message, "chat.messages.cost_nanos: must be between 0 and"),
    "a retry count past PostgreSQL's INTEGER": first_with(
        "chat.tool_calls", "chat.tool_calls.retry_count: must be between 0 and 2,147,483,647",
        retry_count=2**40),
    "an empty attachment id": first_with(
        "chat.attachments", "chat.attachments.id: must be a non-empty", id=""),
    "an empty file path": first_with(
        "chat.file_versions", "chat.file_versions.path: must not be", path=""),
    "a file version 0": first_with(
        "chat.file_versions", "chat.file_versions.version: must be between 1 and", version=0),
    "a setting key the API refuses": first_with(
        "app.settings", "app.settings.key: must be dotted names", key=""),
    "a setting under another namespace than its key's": first_with(
        "app.settings", "app.settings.namespace: is 'elsewhere', but", namespace="elsewhere"),
    "a session forked from an id no call accepts": (
        lambda ls: edit(ls, session_of_first_message(ls), row_set(forked_from_id="f" * 201)),
        session_of_first_message, "chat.sessions.forked_from_id: must be at most 200"),
    "a session that is its own parent": (
        lambda ls: edit(ls, session_of_first_message(ls),
                        lambda r: r["row"].update(parent_id=r["row"]["id"])),
        session_of_first_message, "its own ancestor"),
    "two sessions that are each other's parent": (
        lambda ls: two_sessions_each_others_parent(ls),
        session_of_first_message, "its own ancestor"),
}


def two_sessions_each_others_parent(lines):
    one, two = [i for i, line in enumerate(lines)
                if json.loads(line)["kind"] == "chat.sessions"][:2]
    id_one, id_two = (json.loads(lines[i])["row"]["id"] for i in (one, two))
    return edit(edit(lines, one, row_set(parent_id=id_two)), two, row_set(parent_id=id_one))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_is_refused_and_changes_nothing(stores, lines, case):
    build, where, words = CASES[case]
    target = stores.open()
    session = target.chat.create_session(title="already here")
    target.chat.append(session.id, "user", "existing message")
    target.settings.set("ui.existing", True)
    before = dump(target)
    with pytest.raises(agentkeep.InvalidInput) as caught:
        import_bytes(target, b"".join(build(lines)), NAME)
    line = where(lines) + 1
    message_text = str(caught.value)
    assert message_text.startswith(f"{NAME}:{line}: "), message_text
    assert words in message_text, message_text
    assert caught.value.line == line
    assert dump(target) == before
    # The store still works, and the good file still imports.
    assert import_bytes(target, b"".join(lines)).messages > 0


def test_empty_file(store):
    with pytest.raises(agentkeep.InvalidInput, match=f"{NAME}:1: the file is empty"):
        import_bytes(store, b"", NAME)


@pytest.mark.parametrize(("damage", "words"), [
    (lambda data: data[: len(data) // 2], "the gzip data ends too soon: the file is truncated"),
    (lambda data: data[:3] + b"\x42" + data[4:], "the gzip data is damaged"),  # flags
    (lambda data: data[:2] + b"\x07" + data[3:], "the gzip data is damaged"),  # method
])
def test_damaged_gzip_is_refused_and_changes_nothing(stores, lines, damage, words):
    target = stores.open()
    target.settings.set("ui.existing", True)
    before = dump(target)
    data = damage(gzip.compress(b"".join(lines)))
    with pytest.raises(agentkeep.InvalidInput, match=words) as caught:
        import_bytes(target, data, NAME)
    assert str(caught.value).startswith(f"{NAME}:")
    assert dump(target) == before


def test_every_shape_checked_column_exists():
    """A misspelt SHAPES key would check nothing."""
    from agentkeep.concerns import CONCERNS
    from agentkeep.ops.importer import SHAPES
    from agentkeep.ops.transfer import concern_plan

    class Everything:  # the live columns of an up-to-date store: all declared ones
        def __contains__(self, name):
            return True

    columns = {f"{spec.concern}.{spec.name}.{column.name}" for concern in CONCERNS
               for spec in concern_plan(concern, lambda table: Everything()).tables
               for column in spec.columns}
    assert SHAPES and set(SHAPES) <= columns
