"""Hostile input: every public write method (and search, and the CLI) fed arbitrary values
in every argument.

Each input is either stored and read back identical, or rejected with ``InvalidInput``
(``NotFound`` when it is a well-formed id of nothing); no other exception escapes, and a
rejected call leaves the store exactly as it was: a row-level dump of every table,
search index included, is compared before and after.
"""

from __future__ import annotations

import json
import math
import reprlib
import shlex

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import dump_store, env_int, record
from typer.testing import CliRunner

from agentkeep import InvalidInput, NotFound
from agentkeep.cli import app
from conftest import PG_URL

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

#: Hypothesis examples per backend for the API and for the CLI.
EXAMPLES = env_int("EXAMPLES", 1000)
CLI_EXAMPLES = env_int("CLI_EXAMPLES", 300)
BIG = 10 * 1024 * 1024  # the 10 MB strings

SPECIAL_TEXT = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\u202eevil\u202c", "\u200f\u05d0\u200e",
    "\ufeff", "\U0001f600" * 50, "e\u0301", "\r\n\t\x0b\x0c", "\\", "%", "%s", "?", "$1",
    "'; DROP TABLE messages; --", "\" OR 1=1 --", "' OR ''='", "Robert'); DROP TABLE sessions;",
    "NEAR(a b)", "a AND OR NOT b", "\"unterminated", "*", "col:term", "^start", "a -", "-",
    "OR", "(", ")", "{a b}", "a:b:c", "'", "''", "\"\"", "content MATCH 'x'", "ÅßØ∂",
    "x" * 100_000,
]
TEXT = st.one_of(st.sampled_from(SPECIAL_TEXT),
                 st.text(st.characters(codec=None), max_size=200),
                 st.text(st.characters(categories=["Cs", "Cc", "Cf", "Zl", "Zp"]), max_size=20))
NUMBERS = st.one_of(st.sampled_from([0, -1, 1, 2**31, 2**63 - 1, 2**63, -2**63 - 1, 10**30,
                                     1e308, -1e308, math.inf, -math.inf, math.nan, -0.0, 5e-324]),
                    st.integers(), st.floats())
WRONG_TYPES = st.sampled_from([None, True, False, b"bytes", bytearray(b"x"), [], {}, (),
                               {"a": object()}, object(), {1, 2}, [[[]]], 1j, {"": None},
                               {1: "x", "role": "user"}, {None: 1, "a": 2}])


class Deep:
    """A value too deep for hypothesis to print: holds it, shows only its depth."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.value = nested(depth)

    def __repr__(self) -> str:
        return f"<JSON nested {self.depth} deep>"


def nested(depth: int) -> object:
    value: object = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, TEXT),
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(TEXT, children, max_size=5)),
    max_leaves=30)
ANY_VALUE = st.one_of(TEXT, NUMBERS, WRONG_TYPES, JSON_VALUES,
                      st.sampled_from([Deep(50), Deep(5000), {"k": "v" * 200_000},
                                       {str(i): i for i in range(5000)}]))


def world(store) -> dict[str, str]:
    session = store.chat.create_session(title="world")
    question = store.chat.append(session.id, "user", "question")
    answer = store.chat.append(session.id, "assistant", "answer", parts=[
        {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {}}])
    return {"session": session.id, "question": question.id, "answer": answer.id,
            "call": store.chat.tool_calls(session.id)[0].id}


# Each operation: (name, call(store, ids, value), read_back(store, result) or None).
# read_back returns the stored value to compare with the input when the call succeeded.
def _session_field(field):
    return (f"create_session({field}=)",
            lambda s, ids, v: s.chat.create_session(**{field: v}),
            lambda s, r: getattr(s.chat.get_session(r.id), field))


def _update_field(field):
    return (f"update_session({field}=)",
            lambda s, ids, v: s.chat.update_session(ids["session"], **{field: v}),
            lambda s, r: getattr(s.chat.get_session(r.id), field))


def _append_field(field):
    return (f"append({field}=)",
            lambda s, ids, v: s.chat.append(ids["session"], "user", "text", **{field: v}),
            (lambda s, r: getattr(s.chat.get_message(r.id), field))
            if field in ("content", "provider", "model", "finish_reason", "metadata",
                         "parts") else None)


OPERATIONS = [
    *[_session_field(f) for f in ("title", "provider", "model", "system_prompt",
                                  "generation", "metadata")],
    ("create_session(parent_id=)", lambda s, ids, v: s.chat.create_session(parent_id=v), None),
    ("create_session(id=)", lambda s, ids, v: s.chat.create_session(id=v),
     lambda s, r: s.chat.get_session(r.id).id),
    *[_update_field(f) for f in ("title", "provider", "model", "system_prompt",
                                 "generation", "metadata")],
    ("append(content)", lambda s, ids, v: s.chat.append(ids["session"], "user", v),
     lambda s, r: s.chat.get_message(r.id).content),
    ("append(role)", lambda s, ids, v: s.chat.append(ids["session"], v, "text"), None),
    ("append(session_id)", lambda s, ids, v: s.chat.append(v, "user", "text"), None),
    *[_append_field(f) for f in ("parts", "provider", "model", "finish_reason", "usage",
                                 "cost", "metadata", "parent_id", "summary")],
    ("append_many(messages)", lambda s, ids, v: s.chat.append_many(ids["session"], v), None),
    ("append_many([item])", lambda s, ids, v: s.chat.append_many(ids["session"], [v]), None),
    ("edit(content=)", lambda s, ids, v: s.chat.edit(ids["question"], content=v),
     lambda s, r: s.chat.get_message(r.id).content),
    ("edit(message_id)", lambda s, ids, v: s.chat.edit(v, content="x"), None),
    ("edit(metadata=)", lambda s, ids, v: s.chat.edit(ids["question"], metadata=v),
     lambda s, r: s.chat.get_message(r.id).metadata),
    ("record_tool_call(name)", lambda s, ids, v: s.chat.record_tool_call(ids["answer"], v),
     lambda s, r: s.chat.get_tool_call(r.id).name),
    ("record_tool_call(input)",
     lambda s, ids, v: s.chat.record_tool_call(ids["answer"], "tool", v),
     lambda s, r: s.chat.get_tool_call(r.id).input),
    ("finish_tool_call(output=)",
     lambda s, ids, v: s.chat.finish_tool_call(ids["fresh_call"], output=v),
     lambda s, r: s.chat.get_tool_call(r.id).output),
    ("finish_tool_call(error=)",
     lambda s, ids, v: s.chat.finish_tool_call(ids["fresh_call"], error=v),
     lambda s, r: s.chat.get_tool_call(r.id).error),
    ("start_tool_call(id)", lambda s, ids, v: s.chat.start_tool_call(v), None),
    ("attach(data)", lambda s, ids, v: s.chat.attach(ids["question"], v, filename="f"), None),
    ("attach(filename=)",
     lambda s, ids, v: s.chat.attach(ids["question"], b"x", filename=v),
     lambda s, r: r.filename),
    ("attach(media_type=)",
     lambda s, ids, v: s.chat.attach(ids["question"], b"x", filename="f", media_type=v),
     None),
    ("save_file(path)", lambda s, ids, v: s.chat.save_file(ids["session"], v, b"data"),
     lambda s, r: s.chat.file_versions(r.session_id, r.path)[-1].path),
    ("save_file(data)", lambda s, ids, v: s.chat.save_file(ids["session"], "p.txt", v), None),
    ("switch_branch(message_id)", lambda s, ids, v: s.chat.switch_branch(ids["session"], v),
     None),
    ("set_summary(message_id)", lambda s, ids, v: s.chat.set_summary(ids["session"], v), None),
    ("fork(message_id)", lambda s, ids, v: s.chat.fork(ids["session"], v), None),
    ("delete_session(id)", lambda s, ids, v: s.chat.delete_session(v), None),
    ("purge_session(id)", lambda s, ids, v: s.chat.purge_session(v), None),
    ("settings.set(key)", lambda s, ids, v: s.settings.set(v, 1), None),
    ("settings.set(value)", lambda s, ids, v: s.settings.set("hostile.value", v),
     lambda s, r: s.settings.get("hostile.value")),
    ("search(query)", lambda s, ids, v: s.chat.search(v), None),
    ("search(limit=)", lambda s, ids, v: s.chat.search("question", limit=v), None),
    ("search(role=)", lambda s, ids, v: s.chat.search("question", role=v), None),
    ("history(last=)", lambda s, ids, v: s.chat.history(ids["session"], last=v), None),
    ("list_sessions(cursor=)", lambda s, ids, v: s.chat.list_sessions(cursor=v), None),
]
ID_ARGUMENTS = ("parent_id", "session_id", "message_id", "(id)", "start_tool_call")


def same(stored, given_value) -> bool:
    """Read back identical: equal, of the same JSON shape (1 is not 1.0 nor True)."""
    if isinstance(given_value, float) and math.isnan(given_value):
        return False  # NaN is not JSON; it must have been refused
    return json.dumps(stored, sort_keys=False) == json.dumps(given_value, sort_keys=False) \
        if not isinstance(given_value, str) else stored == given_value


def show(value) -> str:
    """A short repr, safe for values nested 5,000 deep."""
    return reprlib.repr(value)


class Tally:
    def __init__(self) -> None:
        self.inputs = 0
        self.errors = 0


def attempt(stores, store, ids, operation, value, tally: Tally) -> None:
    name, call, read_back = operation
    if isinstance(value, Deep):
        value = value.value
    if name.startswith("finish_tool_call"):  # a call to finish, made before the dump
        ids["fresh_call"] = store.chat.record_tool_call(ids["answer"], "t").id
    store.chat.catch_up_index()
    before = dump_store(stores)
    tally.inputs += 1
    try:
        result = call(store, ids, value)
    except InvalidInput as error:
        assert error.field and error.problem, (name, error)
    except NotFound:
        assert any(word in name for word in ID_ARGUMENTS), (name, show(value))
    except Exception as error:  # noqa: BLE001 - any other exception is the finding
        tally.errors += 1
        raise AssertionError(f"{name} with {show(value)} raised "
                             f"{type(error).__module__}.{type(error).__name__}: "
                             f"{str(error)[:300]}") from error
    else:
        if read_back is not None and value is not None:  # None asks for the default
            stored = read_back(store, result)
            assert same(stored, value), (name, show(value), show(stored))
        return
    store.chat.catch_up_index()  # search may index the backlog: a read's legitimate work
    after = dump_store(stores)
    assert after == before, f"{name} with {show(value)} was refused but changed the store"


def test_every_write_method_stores_or_refuses(stores, request):
    store = stores.open()
    ids = world(store)
    store.chat.catch_up_index()
    tally = Tally()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(operation=st.sampled_from(OPERATIONS), value=ANY_VALUE)
    def run(operation, value):
        attempt(stores, store, ids, operation, value, tally)

    try:
        run()
    finally:
        record(request.config, "hostile: API", stores.backend, inputs_tried=tally.inputs,
               errors_surfaced=tally.errors)


BIG_CASES = [
    ("append(content)", "x" * BIG),
    ("append(content)", "\u202e\U0001f600" * (BIG // 8)),
    ("create_session(title=)", "t" * BIG),
    ("create_session(metadata=)", {"big": "m" * BIG}),
    ("settings.set(value)", "s" * BIG),
    ("search(query)", "lisbon " * (BIG // 7)),
    ("save_file(data)", "d" * BIG),
    ("attach(data)", b"\x00" * BIG),
]


def test_ten_megabyte_strings(stores, request):
    store = stores.open()
    ids = world(store)
    store.chat.catch_up_index()
    tally = Tally()
    by_name = {operation[0]: operation for operation in OPERATIONS}
    try:
        for name, value in BIG_CASES:
            attempt(stores, store, ids, by_name[name], value, tally)
    finally:
        record(request.config, "hostile: 10 MB", stores.backend, inputs_tried=tally.inputs,
               errors_surfaced=tally.errors)


# --- the CLI -------------------------------------------------------------------------
CLI_TEXT = TEXT.filter(lambda text: "\x00" not in text)  # argv cannot carry NUL
CLI_COMMANDS = [
    lambda v: ["sessions", "show", v],
    lambda v: ["sessions", "rm", v, "--yes"],
    lambda v: ["search", v],
    lambda v: ["search", "question", "--limit", v],
    lambda v: ["sessions", "list", "--limit", v],
    lambda v: ["sessions", "list", "--status", v],
    lambda v: ["prune", "--older-than", v, "--dry-run"],
    lambda v: ["prune", "--keep-last", v, "--dry-run"],
    lambda v: ["export", "--session", v, "-o", "-"],
    lambda v: ["migrate", "down", v],
    lambda v: ["backup", "--keep", v],
]


def test_cli_never_shows_a_traceback(stores, request, tmp_path, monkeypatch):
    store = stores.open()
    world(store)
    store.chat.catch_up_index()
    monkeypatch.chdir(tmp_path)
    target = ["--home", str(stores.home)] if stores.backend == "sqlite" else [
        "--url", PG_URL, "--schema-prefix", stores.prefix]
    tally = Tally()
    runner = CliRunner()

    @settings(max_examples=CLI_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(command=st.sampled_from(CLI_COMMANDS),
           value=st.one_of(CLI_TEXT, NUMBERS.map(str)))
    def run(command, value):
        args = command(value)
        before = dump_store(stores)
        tally.inputs += 1
        result = runner.invoke(app, [*target, *args])
        shown = shlex.join(args)[:200]
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            tally.errors += 1
            raise AssertionError(f"agentkeep {shown}: {type(result.exception).__name__}: "
                                 f"{result.exception}") from result.exception
        assert "Traceback" not in result.output, shown
        if result.exit_code != 0:
            lines = [line for line in result.output.splitlines() if line.startswith("error:")]
            assert len(lines) == 1, (shown, result.output[-500:])
            store.chat.catch_up_index()
            assert dump_store(stores) == before, f"agentkeep {shown} failed but changed the store"

    try:
        run()
    finally:
        record(request.config, "hostile: CLI", stores.backend, inputs_tried=tally.inputs,
               errors_surfaced=tally.errors)



# --- regressions: what the properties above found, pinned --------------------------
@pytest.mark.parametrize("operation", [
    "append(cost=)", "search(limit=)", "create_session(parent_id=)", "history(last=)",
    "settings.set(key)", "list_sessions(cursor=)"])
def test_deeply_nested_value_is_refused_not_a_recursion_error(stores, operation):
    # The error message showed repr(value), which raised RecursionError 5,000 levels deep.
    store = stores.open()
    ids = world(store)
    by_name = {op[0]: op for op in OPERATIONS}
    attempt(stores, store, ids, by_name[operation], Deep(5000), Tally())


@pytest.mark.parametrize("item", [{"": None, "role": "user"}, {None: 1, "role": "user"},
                                  {1: "x", "b": 2, "role": "user"}])
def test_unknown_message_keys_of_any_type_are_named(store, item):
    # A key of another type made sorted() raise TypeError; an empty key gave a nameless field.
    session = store.chat.create_session()
    with pytest.raises(InvalidInput) as raised:
        store.chat.append_many(session.id, [item])
    assert raised.value.field and "is not a message field" in raised.value.problem
    assert store.chat.get_session(session.id).message_count == 0
