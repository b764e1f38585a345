"""Property tests on both backends: text and JSON round trips, branching invariants."""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agentkeep import InvalidInput

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# st.text() leaves out surrogates; the second alphabet lets lone ones in too, and the third
# strategy makes sure unstorable text (NUL, lone surrogates) is tried often.
ANY_TEXT = st.one_of(
    st.text(),
    st.text(st.characters(exclude_categories=())),
    st.tuples(st.text(), st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]),
              st.text()).map("".join),
)

# Inside JSON many strings add up: unstorable ones come rarely per string, often per object.
JSON_TEXT = st.one_of(st.text(), st.text(st.characters(exclude_categories=())))
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
JSON_LEAVES = st.none() | st.booleans() | INT64 | st.floats(allow_nan=False,
                                                            allow_infinity=False) | JSON_TEXT
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(JSON_TEXT, children,
                                                                      max_size=4),
    max_leaves=16)
JSON_OBJECTS = st.dictionaries(JSON_TEXT, JSON_VALUES, max_size=5)


def storable_text(text: str) -> bool:
    return "\x00" not in text and not any("\ud800" <= ch <= "\udfff" for ch in text)


def storable(value) -> bool:
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, list):
        return all(map(storable, value))
    if isinstance(value, dict):
        return all(storable(k) and storable(v) for k, v in value.items())
    return True


def identical(a, b) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True would hide a change)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(identical, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, float) and a == 0.0:
        return True  # -0.0 may read back as 0.0
    return a == b


@SETTINGS
@given(text=ANY_TEXT)
def test_any_text_round_trips_or_is_refused(store, text):
    session = store.chat.create_session()
    event("refused" if not storable_text(text) else "stored")
    if not storable_text(text):
        try:
            store.chat.append(session.id, "user", text)
        except InvalidInput as error:
            assert error.field == "content"
        else:
            raise AssertionError(f"{text!r} was accepted")
        assert store.chat.history(session.id) == []
        assert store.chat.get_session(session.id).message_count == 0
        return
    message = store.chat.append(session.id, "user", text,
                                parts=[{"type": "text", "text": text}], metadata={text: text})
    assert message.content == text
    read = store.chat.get_message(message.id)
    assert read == message
    assert read.content == text and read.parts[0]["text"] == text
    assert read.metadata == {text: text}
    assert store.chat.history(session.id) == [message]
    assert store.chat.get_session(session.id).preview == text[:200]
    titled = store.chat.update_session(session.id, title=text)
    assert titled.title == text and store.chat.get_session(session.id).title == text


@SETTINGS
@given(metadata=JSON_OBJECTS, generation=JSON_OBJECTS)
def test_json_metadata_round_trips_exactly(store, metadata, generation):
    event("stored" if storable(metadata) and storable(generation) else "refused")
    if not (storable(metadata) and storable(generation)):
        try:
            store.chat.create_session(metadata=metadata, generation=generation)
        except InvalidInput as error:
            assert error.field in ("metadata", "generation")
        else:
            raise AssertionError("unstorable JSON was accepted")
        return
    session = store.chat.create_session(metadata=metadata, generation=generation)
    read = store.chat.get_session(session.id)
    assert read.metadata == metadata and identical(read.metadata, metadata)
    assert read.generation == generation and identical(read.generation, generation)
    message = store.chat.append(session.id, "assistant", "x", metadata=metadata,
                                parts=[{"type": "data", "value": generation}])
    stored = store.chat.get_message(message.id)
    assert identical(stored.metadata, metadata)
    assert identical(stored.parts, [{"type": "data", "value": generation}])
    assert identical(message.metadata, stored.metadata)
    call = store.chat.record_tool_call(message.id, "tool", metadata)
    assert identical(store.chat.get_tool_call(call.id).input, metadata)
    finished = store.chat.finish_tool_call(call.id, output=generation)
    assert identical(finished.output, generation)


OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["append", "answer", "root", "edit", "switch"]),
              st.integers(min_value=0, max_value=10**6),
              st.integers(min_value=0, max_value=50)),
    min_size=1, max_size=14)


@SETTINGS
@given(operations=OPERATIONS)
def test_branching_invariants(store, operations):
    chat = store.chat
    sid = chat.create_session().id
    parents: dict[str, str | None] = {}  # the model: every message and its parent
    order: list[str] = []
    head = None
    for step, (kind, pick, tokens) in enumerate(operations):
        target = order[pick % len(order)] if order else None
        usage = {"input_tokens": tokens, "output_tokens": step}
        if kind == "append" or target is None:
            message = chat.append(sid, "user", f"step {step}", usage=usage, cost=tokens / 1000)
        elif kind == "answer":
            message = chat.append(sid, "assistant", f"step {step}", parent_id=target,
                                  usage=usage)
        elif kind == "root":
            message = chat.append(sid, "user", f"step {step}", parent_id=None)
        elif kind == "edit":
            message = chat.edit(target, content=f"step {step} (edit)")
            assert message.parent_id == parents[target]
        else:
            assert chat.switch_branch(sid, target).head_id == target
            message = None
            head = target
        if message is not None:
            expected_parent = {"append": head, "answer": target, "root": None,
                               "edit": parents.get(target)}[kind if target else "append"]
            assert message.parent_id == expected_parent
            parents[message.id] = message.parent_id
            order.append(message.id)
            head = message.id

        session = chat.get_session(sid)
        assert session.head_id == head
        path = []
        cursor = head
        while cursor is not None:
            path.append(cursor)
            cursor = parents[cursor]
        path.reverse()
        history = chat.history(sid)
        assert [m.id for m in history] == path
        if history:
            assert history[0].parent_id is None
            assert all(m.parent_id == p.id for p, m in zip(history[:-1], history[1:], strict=True))
            assert all(m.depth == i for i, m in enumerate(history))
            assert history[-1].id == head
            assert chat.history(sid, last=2) == history[-2:]
            assert chat.history(sid, first=2) == history[:2]
            middle = history[len(history) // 2]
            assert chat.history(sid, before=middle.id) == history[:len(history) // 2]
            assert chat.history(sid, after=middle.id) == history[len(history) // 2 + 1:]
        assert (session.message_count, session.input_tokens, session.output_tokens,
                session.cost) == chat.recount(sid)
        assert session.message_count == len(parents)
        with_children = {p for p in parents.values() if p is not None}
        leaves = [b.leaf.id for b in chat.branches(sid)]
        assert sorted(leaves) == sorted(set(parents) - with_children)
        assert {b.leaf.id for b in chat.branches(sid) if b.is_active} == (
            {head} if head in leaves else set())
