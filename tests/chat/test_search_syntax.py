"""Tests of the search query syntax: parsing, and compiled queries on FTS5 and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentkeep.chat.search_syntax import (
    MAX_QUERY_CHARS,
    MAX_TERMS,
    Query,
    Term,
    parse_query,
    to_fts5,
    to_tsquery_sql,
)
from agentkeep.chat.sql import (
    ENSURE_UNACCENT_POSTGRES,
    MAKE_SEARCH_CONFIG_POSTGRES,
    SEARCH_CONFIG_POSTGRES,
    SEARCH_TEXT_POSTGRES,
)
from agentkeep.errors import InvalidInput

PG_URL = os.environ.get("AGENTKEEP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("AGENTKEEP_REQUIRE_PG") == "1"

ROWS = {
    1: "Cheap flights to Lisbon in spring",
    2: "Porto weekend by night train",
    3: "Lisbon trams and the night bus",
    4: "Send me an e-mail about the café",
    5: "I don't like flying",
    6: "東京 trip planning",
    7: "Train tickets to Madrid",
    8: "Write to user@example.com",
    9: "open src/app.py now",
    10: "Use gpt-4.1 and pi as 3.14",
    11: "Un résumé de Köln",
    12: "Hindi: नमस्ते दुनिया; Thai: สวัสดีครับ.",
    13: "Thanks! Its hash is ready",
    14: "Καφές στην ΟΔΟΣ ΑΘΗΝΩΝ",
    15: "le héros du film",
    16: "heart ❤️ emoji",
}

# Query -> expected row ids, the same on FTS5 and PostgreSQL (no English stop words).
CASES = {
    "lisbon": {1, 3},
    "LISBON": {1, 3},
    "LiSbOn flights": {1},
    '"flights to lisbon"': {1},
    '"lisbon flights"': set(),
    "lisbon OR porto": {1, 2, 3},
    "porto tickets OR train": {2},
    "night OR tickets -bus": {2, 7},
    "lisbon -flights": {3},
    'night -"night train"': {3},
    '"night train': {2},
    "flig*": {1},
    "tra*": {2, 3, 7},
    "fli*ghts": {1},
    '"flig*"': set(),
    "e-mail": {4},
    "café": {4},
    "CAFÉ": {4},
    "東京": {6},
    "content:madrid": set(),
    "madrid (tickets)": {7},
    # PostgreSQL's parser keeps these whole, SQLite's splits them (chat_0007)
    "example": {8},
    "user@example.com": {8},
    "app.py": {9},
    "app": {9},
    "py": {9},
    "gpt-4.1": {10},
    "3.14": {10},
    "RÉSUMÉ": {11},
    "köln": {11},
    "kö*": {11},
    # accents fold on both (FTS5's remove_diacritics 2; unaccent on PostgreSQL, chat_0008)
    "cafe": {4},
    "resume": {11},
    "koln": {11},
    "ko*": {11},
    # vowel signs are part of their word (PostgreSQL keeps it whole)
    "नमस्ते": {12},
    "दुनिया hindi": {12},
    "สวัสดีครับ": {12},
    "नम*": {12},
    # a prefix that is a stop word on PostgreSQL is taken as typed there
    "than*": {13},
    "has*": {13},
    "hé*": {15, 16},  # a stop word once unaccented, taken as typed but unaccented
    "οδος αθηνων": {14},
    "ΟΔΟΣ": {14},
    "καφές": {14},
    "heart ❤️": {16},
}
# Stop words differ: PostgreSQL's English configuration drops "don" and "t".
FTS5_ONLY_CASES = {"don't": {5}, "DON'T like": {5}, "don": {5}}

SPECIALS = [
    "OR",
    "AND",
    "NOT",
    "NEAR",
    "NEAR(",
    '"',
    "*",
    "-",
    "^",
    ":",
    "(",
    ")",
    "+",
    "content:",
    "content:x",
    "{content}",
    "'",
    "\\",
    "&",
    "|",
    "!",
    "<->",
    ":*",
    "_",
    "e-mail",
    "don't",
    "café",
    "東京",
    "lisbon",
    "-train",
    "flig*",
]
QUERY_TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(st.sampled_from(SPECIALS), st.text(max_size=8)), max_size=12).map(" ".join),
    st.lists(st.one_of(st.sampled_from(SPECIALS), st.text(max_size=3)), max_size=12).map("".join),
)


def w(*words: str, prefix: bool = False) -> Term:
    return Term(tuple(words), prefix)


# --- parse_query ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "groups", "excluded"),
    [
        ("lisbon flights", [[w("lisbon")], [w("flights")]], []),
        ("  Lisbon\tFLIGHTS\n", [[w("lisbon")], [w("flights")]], []),
        ('"Flights to Lisbon"', [[w("flights", "to", "lisbon")]], []),
        ("lisbon OR porto", [[w("lisbon"), w("porto")]], []),
        ("a b OR c", [[w("a")], [w("b"), w("c")]], []),
        ("a OR b OR c d", [[w("a"), w("b"), w("c")], [w("d")]], []),
        ("lisbon or porto", [[w("lisbon")], [w("or")], [w("porto")]], []),
        ('"a OR b"', [[w("a", "or", "b")]], []),
        ("lisbon -train", [[w("lisbon")]], [w("train")]),
        ('lisbon -"night train"', [[w("lisbon")]], [w("night", "train")]),
        ("-train lisbon", [[w("lisbon")]], [w("train")]),
        ("-OR x", [[w("x")]], [w("or")]),
        ("flig*", [[w("flig", prefix=True)]], []),
        ("-flig*  x", [[w("x")]], [w("flig", prefix=True)]),
        ("fl*ig", [[w("flig")]], []),
        ('"flig*"', [[w("flig")]], []),
        ('"night train"*', [[w("night", "train")]], []),
        ("don't*", [[w("don", "t")]], []),
        ("don't", [[w("don", "t")]], []),
        ("e-mail a.b snake_case", [[w("e", "mail")], [w("a", "b")], [w("snake", "case")]], []),
        ("!!! ( ) AND x", [[w("and")], [w("x")]], []),
        ("a - b", [[w("a")], [w("b")]], []),
        ("a OR !!! b", [[w("a"), w("b")]], []),
        ('"night train', [[w("night", "train")]], []),
        ('x "night train', [[w("x")], [w("night", "train")]], []),
        ('abc"def ghi" jkl', [[w("abc")], [w("def", "ghi")], [w("jkl")]], []),
        ("CAFÉ 東京 İstanbul", [[w("café")], [w("東京")], [w("istanbul")]], []),
        ("नमस्ते cafe\u0301", [[w("नमस्ते")], [w("cafe")]], []),
        ("heart ❤️ #️⃣ \u093c", [[w("heart")]], []),  # no word of marks alone
        ("ΟΔΟΣ οδός", [[w("οδοσ")], [w("οδόσ")]], []),  # final sigma is sigma
        ("content:x NEAR(a b)", [[w("content", "x")], [w("near", "a")], [w("b")]], []),
        ("x^2 (y)", [[w("x", "2")], [w("y")]], []),
    ],
)
def test_parse_query(text: str, groups: list[list[Term]], excluded: list[Term]) -> None:
    assert parse_query(text) == Query(tuple(map(tuple, groups)), tuple(excluded))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "has no words to search for"),
        ("   \t\n", "has no words to search for"),
        ("!!! ( ) *", "has no words to search for"),
        ('""', "has no words to search for"),
        ("-", "has no words to search for"),
        ("❤️", "has no words to search for"),
        ("-train", "needs at least one word that is not excluded (-word)"),
        ('-train -"night bus"', "needs at least one word that is not excluded (-word)"),
        ("OR", "OR must stand between"),
        ("OR a", "OR must stand between"),
        ("a OR", "OR must stand between"),
        ("a OR OR b", "OR must stand between"),
        ("a OR -b", "OR must stand between"),
        ("-a OR b", "OR must stand between"),
        ("a OR ***", "OR must stand between"),
        ("a\x00b", "contains a NUL character"),
        ("a \ud800 b", "contains a lone surrogate"),
        ("a" * (MAX_QUERY_CHARS + 1), f"is longer than {MAX_QUERY_CHARS} characters"),
        (" ".join(["w"] * (MAX_TERMS + 1)), f"has more than {MAX_TERMS}"),
        (" ".join(["w"] * MAX_TERMS + ["-x"]), f"has more than {MAX_TERMS}"),
    ],
)
def test_parse_query_errors(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_query(text)
    assert info.value.field == "query"
    assert info.value.problem.startswith(problem)
    assert info.value.problem.endswith('syntax: words, "phrases", OR, -exclude, prefix*')


@pytest.mark.parametrize("value", [None, 42, b"lisbon", ["lisbon"]])
def test_parse_query_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidInput, match="must be a string") as info:
        parse_query(value)  # type: ignore[arg-type]
    assert info.value.field == "query"
    assert isinstance(info.value, ValueError)


def test_limits_are_inclusive() -> None:
    assert len(parse_query(" ".join(["w"] * MAX_TERMS)).groups) == MAX_TERMS
    assert parse_query("a" * MAX_QUERY_CHARS).groups == ((w("a" * MAX_QUERY_CHARS),),)


# --- compilers --------------------------------------------------------------------------------


def test_to_fts5_shape() -> None:
    query = parse_query('lisbon "night train" flig* OR porto -bus -"e-mail x"')
    assert to_fts5(query) == (
        '("lisbon" AND "night train" AND ("flig"* OR "porto")) NOT ("bus" OR "e mail x")'
    )
    assert to_fts5(parse_query("lisbon")) == '"lisbon"'


def test_to_fts5_escapes_quotes_in_hand_built_terms() -> None:
    assert to_fts5(Query(((w('a"b'),),), ())) == '"a""b"'


def test_to_tsquery_sql_shape() -> None:
    sql, params = to_tsquery_sql(parse_query("lisbon flig* OR porto -bus -night"), "simple")
    config = "(SELECT CAST(CAST('simple' AS text) AS regconfig))"  # looked up as it runs
    prefix = (f"(SELECT CASE WHEN numnode(q) > 0 THEN q ELSE to_tsquery('simple', ?) END "
              f"FROM to_tsquery({config}, ?) AS q)")  # a stop word taken as typed
    assert sql == (
        f"(phraseto_tsquery({config}, ?) && ({prefix} || "
        f"phraseto_tsquery({config}, ?)) && !!(phraseto_tsquery({config}, ?) || "
        f"phraseto_tsquery({config}, ?)))"
    )
    assert params == ["lisbon", "flig:*", "flig:*", "porto", "bus", "night"]


@pytest.mark.parametrize("config", ["English", "english'", "pg_catalog.english", "", "a b"])
def test_to_tsquery_sql_rejects_bad_config(config: str) -> None:
    with pytest.raises(InvalidInput) as info:
        to_tsquery_sql(parse_query("x"), config)
    assert info.value.field == "config"


@pytest.mark.parametrize(
    "query",
    [
        Query((), ()),
        Query(((),), ()),
        Query(((Term(()),),), ()),
        Query(((w("x"),),), (Term(()),)),
    ],
)
def test_compilers_reject_empty_queries(query: Query) -> None:
    with pytest.raises(InvalidInput):
        to_fts5(query)
    with pytest.raises(InvalidInput):
        to_tsquery_sql(query)


def test_to_tsquery_sql_rejects_hand_built_bad_prefix() -> None:
    with pytest.raises(InvalidInput):
        to_tsquery_sql(Query(((w("a:b & c", prefix=True),),), ()))


# --- SQLite FTS5 ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fts5() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(content, "
               "tokenize='porter unicode61 remove_diacritics 2')")  # agentkeep's
    db.executemany("INSERT INTO t(rowid, content) VALUES (?, ?)", ROWS.items())
    yield db
    db.close()


def fts5_rows(db: sqlite3.Connection, text: str) -> set[int]:
    expr = to_fts5(parse_query(text))
    return {row[0] for row in db.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,))}


@pytest.mark.parametrize(("text", "expected"), [*CASES.items(), *FTS5_ONLY_CASES.items()])
def test_fts5_selects_expected_rows(fts5: sqlite3.Connection, text: str, expected: set) -> None:
    assert fts5_rows(fts5, text) == expected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=QUERY_TEXT)
def test_fts5_never_errors(fts5: sqlite3.Connection, text: str) -> None:
    try:
        query = parse_query(text)
    except InvalidInput:
        return
    fts5.execute("SELECT rowid FROM t WHERE t MATCH ?", (to_fts5(query),)).fetchall()


# --- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg():
    try:
        import psycopg

        conn = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except Exception as exc:  # ImportError or any connection failure
        reason = f"PostgreSQL not reachable at {PG_URL} ({type(exc).__name__}: {exc})"
        if REQUIRE_PG:
            pytest.fail(f"AGENTKEEP_REQUIRE_PG=1 but {reason}")
        pytest.skip(reason)
    conn.add_notice_handler(lambda diag: None)  # "only stop words" notices are expected
    schema = f"search_syntax_{uuid.uuid4().hex[:12]}"  # the store's search configuration
    conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(f"SET search_path = {schema}")
    conn.execute(ENSURE_UNACCENT_POSTGRES)
    conn.execute(MAKE_SEARCH_CONFIG_POSTGRES)
    conn.execute("CREATE TEMP TABLE search_syntax_t (id int PRIMARY KEY, content text)")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO search_syntax_t VALUES (%s, %s)", list(ROWS.items()))
    yield conn
    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    conn.close()


def pg_rows(conn, text: str) -> set[int]:
    expr, params = to_tsquery_sql(parse_query(text), SEARCH_CONFIG_POSTGRES)
    text_sql = SEARCH_TEXT_POSTGRES.replace("m.content", "content")  # as indexed
    sql = (
        "SELECT id FROM search_syntax_t"
        f" WHERE to_tsvector('{SEARCH_CONFIG_POSTGRES}', {text_sql}) @@ {expr.replace('?', '%s')}"
    )
    return {row[0] for row in conn.execute(sql, params)}


@pytest.mark.postgres
@pytest.mark.parametrize(("text", "expected"), list(CASES.items()))
def test_pg_selects_expected_rows(pg, text: str, expected: set) -> None:
    assert pg_rows(pg, text) == expected


@pytest.mark.postgres
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=QUERY_TEXT)
def test_pg_never_errors(pg, text: str) -> None:
    try:
        parse_query(text)
    except InvalidInput:
        return
    pg_rows(pg, text)  # autocommit: a failure cannot poison the next example
