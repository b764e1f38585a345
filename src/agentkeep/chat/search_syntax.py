"""The user search query syntax of agentkeep, parsed and compiled without any I/O.

The same syntax is accepted on SQLite (FTS5) and PostgreSQL (``tsquery``)::

    lisbon flights          both words must match (implicit AND)
    "flights to lisbon"     a phrase: the words adjacent, in that order
    lisbon OR porto         either word (uppercase OR only; it binds tighter than
                            the implicit AND, so ``a b OR c`` means a AND (b OR c))
    -train  -"night train"  exclude messages matching the word or phrase
    flig*                   prefix: words whose stem starts with "flig" (the index holds
                            stems: run* finds "running", runni* does not)

Words are split like SQLite's unicode61 tokenizer: runs of Unicode letters and digits
(``_`` and punctuation separate runs) and lowercased. A bare token made of several runs
(``don't``, ``e-mail``, ``a.b``) becomes a phrase of those runs; a token with no letter or
digit is dropped, as is a lone ``-``. An unbalanced quote makes the rest of the text the
phrase. Only a trailing ``*`` on a single-run bare word makes a prefix; any other ``*`` is
ignored. Everything else (NEAR, ``^``, ``:``, parentheses, column filters) is plain text.

:func:`parse_query` turns the text into a :class:`Query` or raises
:class:`~agentkeep.errors.InvalidInput`; :func:`to_fts5` and :func:`to_tsquery_sql` compile
a :class:`Query` into an FTS5 MATCH expression or a parameterised PostgreSQL expression.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from agentkeep.errors import InvalidInput

from .sql import regconfig_sql

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_TERMS",
    "Query",
    "Term",
    "parse_query",
    "to_fts5",
    "to_tsquery_sql",
]

MAX_QUERY_CHARS = 1000
MAX_TERMS = 64

SYNTAX_HINT = 'syntax: words, "phrases", OR, -exclude, prefix*'

# Combining marks that are accents (Latin, Greek, Cyrillic) or variation selectors (the
# U+FE0F of "❤️"): they end a run, as they are folded away or ignored. Other marks (the
# vowel signs of Devanagari, Thai, ...) are part of the word they follow, as PostgreSQL
# indexes it: "नमस्ते" is one word, not "नमस" and "त". A mark never starts a word.
_ACCENT_MARKS = ((0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF),
                 (0xFE00, 0xFE0F), (0xFE20, 0xFE2F), (0xE0100, 0xE01EF))
# Optional "-", then a quoted phrase (closing quote optional) or a bare token.
_TOKEN = re.compile(r'\s*(-?)(?:"([^"]*)"?|([^\s"]*))')
_CONFIG = re.compile(r"[a-z_]+")
_OR = "OR"


@dataclass(frozen=True)
class Term:
    """One word, prefix or phrase: lowercased runs; more than one run means a phrase."""

    words: tuple[str, ...]
    is_prefix: bool = False


@dataclass(frozen=True)
class Query:
    """An AND of groups, each group an OR of terms, minus any excluded term."""

    groups: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...]


def _invalid(problem: str, field: str = "query") -> InvalidInput:
    return InvalidInput(field, f"{problem}; {SYNTAX_HINT}")


def _is_accent(ch: str) -> bool:
    point = ord(ch)
    return any(low <= point <= high for low, high in _ACCENT_MARKS)


def _is_word_mark(ch: str) -> bool:
    return ch >= "\u0300" and unicodedata.category(ch)[0] == "M" and not _is_accent(ch)


def _unaccented(word: str) -> str:
    """``word`` without its accents, as the index holds it ("mé" -> "me")."""
    kept = (ch for ch in unicodedata.normalize("NFD", word) if not _is_accent(ch))
    return unicodedata.normalize("NFC", "".join(kept))


def _runs(text: str) -> list[str]:
    """The words of ``text``: runs of letters and digits (with their non-accent marks)."""
    runs, run = [], []
    for ch in text:
        if ch.isalnum() or (run and _is_word_mark(ch)):
            run.append(ch)
        elif run:
            runs.append("".join(run))
            run = []
    if run:
        runs.append("".join(run))
    return runs


def _term(body: str, quoted: bool) -> Term | None:
    # Lowercasing may add marks ("İ" -> "i" + U+0307): keep only the word characters.
    # Final sigma is sigma ("ΟΔΟΣ" is "οδοσ" to PostgreSQL, "οδος" to Python).
    lowered = ("".join(_runs(run.lower())).replace("ς", "σ")
               for run in _runs(body.replace("*", "")))
    runs = tuple(run for run in lowered if run)
    if not runs:
        return None
    return Term(runs, is_prefix=not quoted and len(runs) == 1 and body.endswith("*"))


def _lex(text: str) -> Iterator[str | tuple[bool, Term]]:
    """Yield ``"OR"`` for the operator and ``(excluded, term)`` for each searchable token."""
    for match in _TOKEN.finditer(text):
        minus, phrase, bare = match.groups()
        if phrase is None and not minus and bare == _OR:
            yield _OR
            continue
        term = _term(phrase if phrase is not None else bare, quoted=phrase is not None)
        if term is not None:
            yield bool(minus), term


def parse_query(text: str) -> Query:
    """Parse a user search query into a :class:`Query`.

    Args:
        text: The query as typed by the user, in the syntax described in this module.

    Returns:
        The parsed query, with at least one non-excluded term.

    Raises:
        InvalidInput: (field ``"query"``) if ``text`` is not a string, is longer than
            :data:`MAX_QUERY_CHARS`, contains a NUL or a lone surrogate, misplaces ``OR``,
            has no searchable word, has only excluded words, or has more than
            :data:`MAX_TERMS` terms.
    """
    if not isinstance(text, str):
        raise _invalid(f"must be a string, not {type(text).__name__}")
    if len(text) > MAX_QUERY_CHARS:
        raise _invalid(f"is longer than {MAX_QUERY_CHARS} characters")
    if "\x00" in text:
        raise _invalid("contains a NUL character")
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        raise _invalid("contains a lone surrogate (not valid Unicode text)")
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    last: str | None = None  # kind of the previous item: "word", "excluded" or "OR"
    for item in _lex(text):
        if item == _OR:
            if last != "word":
                raise _invalid("OR must stand between two words that are not excluded")
            last = _OR
            continue
        minus, term = item
        if minus:
            if last == _OR:
                raise _invalid("OR must stand between two words that are not excluded")
            excluded.append(term)
            last = "excluded"
        else:
            if last == _OR:
                groups[-1].append(term)
            else:
                groups.append([term])
            last = "word"
    if last == _OR:
        raise _invalid("OR must stand between two words that are not excluded")
    if not groups and not excluded:
        raise _invalid("has no words to search for")
    if not groups:
        raise _invalid("needs at least one word that is not excluded (-word)")
    if sum(map(len, groups)) + len(excluded) > MAX_TERMS:
        raise _invalid(f"has more than {MAX_TERMS} words, phrases and prefixes")
    return Query(tuple(map(tuple, groups)), tuple(excluded))


def _check(query: Query) -> None:
    terms = [t for g in query.groups for t in g] + list(query.excluded)
    if not query.groups or not all(query.groups) or not all(t.words for t in terms):
        raise _invalid("has no words to search for")


def _fts5_term(term: Term) -> str:
    quoted = '"' + " ".join(w.replace('"', '""') for w in term.words) + '"'
    return quoted + "*" if term.is_prefix else quoted


def to_fts5(query: Query) -> str:
    """Compile a query into an SQLite FTS5 MATCH expression.

    Every word is double-quoted, so no user text is read as FTS5 syntax: ``"word"``,
    ``"a b c"`` for a phrase, ``"flig"*`` for a prefix. Groups are joined with ``AND``,
    OR groups are parenthesised, and exclusions are appended as ``NOT (x OR y)`` (FTS5's
    NOT is binary: ``(positive) NOT (negatives)``).

    Args:
        query: A query from :func:`parse_query`.

    Returns:
        The expression, to be bound as the right-hand side of ``MATCH ?``.

    Raises:
        InvalidInput: if the query has no group, an empty group or a term without words.
    """
    _check(query)
    parts = [
        _fts5_term(g[0]) if len(g) == 1 else "(" + " OR ".join(map(_fts5_term, g)) + ")"
        for g in query.groups
    ]
    expr = " AND ".join(parts)
    if query.excluded:
        expr = f"({expr}) NOT ({' OR '.join(map(_fts5_term, query.excluded))})"
    return expr


def to_tsquery_sql(query: Query, config: str = "english") -> tuple[str, list[str]]:
    """Compile a query into a PostgreSQL expression of type ``tsquery``.

    User text is never put into the SQL: each word or phrase becomes
    ``phraseto_tsquery(<config>, ?)`` bound to its words, and each prefix becomes
    ``to_tsquery(<config>, ?)`` bound to ``word:*`` (``to_tsquery('simple', ?)`` of the
    unaccented word when the configuration drops it as a stop word; the word holds only
    letters, digits and their marks, so it is inert in ``to_tsquery`` syntax). Terms are
    combined with ``&&`` and ``||``; exclusions are appended as ``&& !!(x || y)``. The
    placeholder is ``?``.

    Args:
        query: A query from :func:`parse_query`.
        config: The text search configuration, a trusted identifier from code; it must
            match ``^[a-z_]+$``.

    Returns:
        The parenthesised SQL expression and its parameters, in placeholder order.

    Raises:
        InvalidInput: if ``config`` is not a plain identifier (field ``"config"``), or the
            query is empty or holds a prefix that is not a single letters-and-digits word.
    """
    if not isinstance(config, str) or not _CONFIG.fullmatch(config):
        raise InvalidInput("config", "must be a text search configuration name ([a-z_]+)")
    _check(query)
    params: list[str] = []
    config_sql = regconfig_sql(config)

    def term_sql(term: Term) -> str:
        if term.is_prefix:
            if len(term.words) != 1 or _runs(term.words[0]) != [term.words[0]]:
                raise _invalid("a prefix must be a single word of letters and digits")
            # A prefix that is a stop word ("than*", "has*") would match nothing: it is
            # then taken as typed ('simple'), so it finds "thank" and "hash" as on SQLite.
            params.extend([f"{_unaccented(term.words[0])}:*", f"{term.words[0]}:*"])
            return (f"(SELECT CASE WHEN numnode(q) > 0 THEN q ELSE to_tsquery('simple', ?) "
                    f"END FROM to_tsquery({config_sql}, ?) AS q)")
        params.append(" ".join(term.words))
        return f"phraseto_tsquery({config_sql}, ?)"

    parts = [
        term_sql(g[0]) if len(g) == 1 else "(" + " || ".join(map(term_sql, g)) + ")"
        for g in query.groups
    ]
    sql = " && ".join(parts)
    if query.excluded:
        sql += " && !!(" + " || ".join(map(term_sql, query.excluded)) + ")"
    return f"({sql})", params
