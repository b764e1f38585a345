"""Full-text search through the store: syntax, filters, ranking, snippets, index upkeep."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentkeep import InvalidInput

TEXTS = {
    "lisbon_flights": ("user", "Cheap flights to Lisbon in spring"),
    "porto_train": ("assistant", "Porto weekend by night train"),
    "lisbon_trams": ("user", "Lisbon trams and the night bus"),
    "madrid_train": ("assistant", "Train tickets to Madrid"),
}


@pytest.fixture
def corpus(store):
    """Two sessions holding the four TEXTS; returns {name: message}."""
    first = store.chat.create_session(title="Spring trip")
    second = store.chat.create_session(title="Rail ideas")
    messages = {}
    for name, (role, text) in TEXTS.items():
        session = first if name in ("lisbon_flights", "porto_train") else second
        messages[name] = store.chat.append(session.id, role, text)
    return messages


def found(store, query, **filters):
    return {hit.message.content for hit in store.chat.search(query, **filters)}


def texts(*names):
    return {TEXTS[name][1] for name in names}


@pytest.mark.parametrize("query, expected", [
    ("lisbon", ("lisbon_flights", "lisbon_trams")),
    ("LISBON", ("lisbon_flights", "lisbon_trams")),
    ("lisbon night", ("lisbon_trams",)),
    ("flight", ("lisbon_flights",)),  # stemmed on both backends
    ('"night train"', ("porto_train",)),
    ('"train night"', ()),
    ("porto OR madrid", ("porto_train", "madrid_train")),
    ("train OR trams night", ("porto_train", "lisbon_trams")),
    ("train -madrid", ("porto_train",)),
    ('night -"night train"', ("lisbon_trams",)),
    ("lisb*", ("lisbon_flights", "lisbon_trams")),
    ("tra*", ("porto_train", "lisbon_trams", "madrid_train")),
    ("zanzibar", ()),
    ("madrid (tickets)", ("madrid_train",)),
    ("content:madrid", ()),
    ("NEAR(lisbon", ()),  # one token of two runs: the phrase "near lisbon"
    ("lisbon^", ("lisbon_flights", "lisbon_trams")),
])
def test_query_syntax(store, corpus, query, expected):
    assert found(store, query) == texts(*expected)


def test_every_hit_is_the_stored_message(store, corpus):
    hits = store.chat.search("lisbon OR train")
    assert len(hits) == 4
    for hit in hits:
        assert hit.message == store.chat.get_message(hit.message.id)
        title = store.chat.get_session(hit.message.session_id).title
        assert hit.session_title == title
        assert isinstance(hit.score, float)


def test_filters(store, corpus):
    first_session = corpus["lisbon_flights"].session_id
    assert found(store, "lisbon OR train", session_id=first_session) == texts(
        "lisbon_flights", "porto_train")
    assert found(store, "lisbon OR train", role="user") == texts(
        "lisbon_flights", "lisbon_trams")
    assert found(store, "lisbon OR train", role="assistant", session_id=first_session) == texts(
        "porto_train")
    assert found(store, "lisbon", session_id="no-such-session") == set()
    assert found(store, "lisbon", role="tool") == set()
    times = sorted(m.created_at for m in corpus.values())
    middle = corpus["lisbon_trams"].created_at
    expected_since = {m.content for m in corpus.values() if m.created_at >= middle}
    expected_until = {m.content for m in corpus.values() if m.created_at < middle}
    assert found(store, "lisbon OR train", since=middle) == expected_since
    assert found(store, "lisbon OR train", until=middle) == expected_until
    assert corpus["lisbon_trams"].content in expected_since
    assert found(store, "lisbon OR train", since=times[-1] + timedelta(seconds=1)) == set()
    assert found(store, "lisbon OR train", until=times[0]) == set()


def test_limit_and_ranking(store):
    session = store.chat.create_session(title="rank")
    filler = " ".join(f"word{i}" for i in range(60))
    weak = store.chat.append(session.id, "user", f"{filler} lisbon {filler}")
    strong = store.chat.append(session.id, "user", "lisbon lisbon lisbon lisbon")
    middle = store.chat.append(session.id, "user", f"lisbon {filler} lisbon")
    hits = store.chat.search("lisbon")
    assert [h.message.id for h in hits][0] == strong.id
    assert {h.message.id for h in hits} == {weak.id, strong.id, middle.id}
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert [h.message.id for h in store.chat.search("lisbon", limit=1)] == [strong.id]
    assert len(store.chat.search("lisbon", limit=2)) == 2


def test_snippets_mark_the_match(store, corpus):
    hit = store.chat.search("madrid")[0]
    assert "[Madrid]" in hit.snippet
    hit = store.chat.search("tickets", marks=("<b>", "</b>"))[0]
    assert "<b>tickets</b>" in hit.snippet
    hit = store.chat.search('"night train"', marks=("«", "»"))[0]
    assert "«" in hit.snippet and "»" in hit.snippet
    assert "night" in hit.snippet and "train" in hit.snippet
    long_session = store.chat.create_session()
    text = " ".join(["padding"] * 200 + ["needle"] + ["padding"] * 200)
    store.chat.append(long_session.id, "user", text)
    snippet = store.chat.search("needle")[0].snippet
    assert "[needle]" in snippet and len(snippet) < len(text)


@pytest.mark.parametrize("marks", [("[",), ("", "]"), ("a", "b", "c"), ('"', '"'),
                                   ("=", "="), ("x" * 17, "y"), "[]", None, ("\x00", "]")])
def test_bad_marks(store, corpus, marks):
    with pytest.raises(InvalidInput):
        store.chat.search("lisbon", marks=marks)


def test_soft_deleted_sessions_are_left_out(store, corpus):
    first_session = corpus["lisbon_flights"].session_id
    store.chat.delete_session(first_session)
    assert found(store, "lisbon") == texts("lisbon_trams")
    assert found(store, "lisbon", session_id=first_session) == set()
    store.chat.restore_session(first_session)
    assert found(store, "lisbon") == texts("lisbon_flights", "lisbon_trams")
    store.chat.archive_session(first_session)  # archived sessions stay searchable
    assert found(store, "lisbon") == texts("lisbon_flights", "lisbon_trams")


def test_a_message_appended_right_before_a_search_is_found(store):
    session = store.chat.create_session()
    for round_number in range(5):
        store.chat.append(session.id, "user", f"fresh{round_number} kiwi")
        assert found(store, f"fresh{round_number}") == {f"fresh{round_number} kiwi"}
        assert len(store.chat.search("kiwi")) == round_number + 1
    store.chat.append_many(session.id, [{"role": "user", "content": f"batch{i} kiwi"}
                                        for i in range(10)])
    assert len(store.chat.search("kiwi", limit=100)) == 15
    assert found(store, "batch9") == {"batch9 kiwi"}


def test_purged_messages_leave_the_index_and_new_ones_are_found(store):
    keep = store.chat.create_session(title="keep")
    gone = store.chat.create_session(title="gone")
    store.chat.append(keep.id, "user", "papaya kept")
    store.chat.append(gone.id, "user", "papaya indexed before purge")
    assert len(store.chat.search("papaya")) == 2  # the index caught up with both
    store.chat.append(gone.id, "user", "papaya never searched before purge")
    store.chat.purge_session(gone.id)
    assert found(store, "papaya") == {"papaya kept"}
    later = store.chat.create_session()
    store.chat.append(later.id, "user", "papaya after purge")
    assert found(store, "papaya") == {"papaya kept", "papaya after purge"}
    # Purging the session that holds the newest messages, then appending again.
    store.chat.purge_session(later.id)
    store.chat.append(keep.id, "user", "papaya newest")
    assert found(store, "papaya") == {"papaya kept", "papaya newest"}
    assert all(h.message == store.chat.get_message(h.message.id)
               for h in store.chat.search("papaya"))


def test_search_inside_a_transaction_sees_its_own_appends(store):
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "mango committed")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.chat.append(session.id, "user", "mango uncommitted")
            assert found(store, "mango") == {"mango committed", "mango uncommitted"}
            raise RuntimeError("roll back")
    assert found(store, "mango") == {"mango committed"}
    store.chat.append(session.id, "user", "mango again")
    assert found(store, "mango") == {"mango committed", "mango again"}


def test_search_finds_unicode_words(store):
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "Um café em Lisboa")
    store.chat.append(session.id, "user", "東京 trip planning")
    assert found(store, "café") == {"Um café em Lisboa"}
    assert found(store, "CAFÉ") == {"Um café em Lisboa"}
    assert found(store, "東京") == {"東京 trip planning"}


def test_search_folds_accents_alike_on_both_backends(store):
    """FTS5 folds accents (remove_diacritics 2); PostgreSQL does since chat_0008 through
    unaccent: either spelling finds the other, and the snippet marks the word as written."""
    session = store.chat.create_session()
    for text in ("Um café em Lisboa", "L'ÉCOLE est fermée", "Ein Tag in Köln", "plain cafe"):
        store.chat.append(session.id, "user", text)
    assert found(store, "cafe") == {"Um café em Lisboa", "plain cafe"}
    assert found(store, "CAFÉ") == {"Um café em Lisboa", "plain cafe"}
    assert found(store, "ecole fermee") == {"L'ÉCOLE est fermée"}
    assert found(store, "koln") == {"Ein Tag in Köln"}
    assert found(store, "ko*") == {"Ein Tag in Köln"}
    assert found(store, '"ein tag in koln"') == {"Ein Tag in Köln"}
    (hit,) = store.chat.search("ecole")
    assert hit.snippet.endswith("[ÉCOLE] est fermée")
    assert "[café]" in store.chat.search("cafe lisboa")[0].snippet


def test_search_finds_the_words_of_addresses_files_and_numbers(store):
    """PostgreSQL's parser keeps these whole and SQLite splits them: both find the parts
    and the whole (chat_0007)."""
    session = store.chat.create_session()
    for text in ("write to user@example.com", "see src/app.py", "use gpt-4.1, pi is 3.14"):
        store.chat.append(session.id, "user", text)
    assert found(store, "example") == found(store, "user@example.com") == {
        "write to user@example.com"}
    assert found(store, "app") == found(store, "app.py") == {"see src/app.py"}
    assert found(store, "gpt-4.1") == found(store, "3.14") == {"use gpt-4.1, pi is 3.14"}


@pytest.mark.parametrize("query", [
    "", "   ", "-lisbon", "OR", "lisbon OR", "OR lisbon", "*", '"', '""', "-", "!!!",
    "x" * 1001, "nul\x00", "lone \ud800", None, 5, b"lisbon", ["lisbon"],
])
def test_empty_or_malformed_queries(store, corpus, query):
    with pytest.raises(InvalidInput) as error:
        store.chat.search(query)
    assert error.value.field == "query"


@pytest.mark.parametrize("filters", [
    {"limit": 0}, {"limit": -1}, {"limit": "5"}, {"limit": 10_001}, {"role": "robot"},
    {"session_id": 5}, {"session_id": ""}, {"since": "yesterday"}, {"until": 5},
])
def test_bad_filters(store, corpus, filters):
    with pytest.raises(InvalidInput):
        store.chat.search("lisbon", **filters)


def test_naive_times_are_refused(store, corpus):
    naive = corpus["lisbon_flights"].created_at.replace(tzinfo=None)
    with pytest.raises(InvalidInput):
        store.chat.search("lisbon", since=naive)


def test_a_bulk_backlog_is_indexed_at_once_and_its_queue_reclaimed(store):
    """10,000 messages appended without a search: catch_up_index indexes them in one go,
    and on PostgreSQL the emptied queue's dead rows are vacuumed away."""
    session = store.chat.create_session()
    for batch in range(10):
        store.chat.append_many(session.id, [
            {"role": "user", "content": f"bulk message {batch * 1000 + i} about item{i}"}
            for i in range(1000)])
    assert store.chat.catch_up_index() == 10_000
    assert store.chat.catch_up_index() == 0
    assert [hit.message.content for hit in store.chat.search("item7 1007")] == [
        "bulk message 1007 about item7"]
    if store.dialect == "postgresql":
        with store._backend.read("chat") as conn:
            assert conn.one("SELECT pg_relation_size('search_backlog')")[0] == 0


@pytest.mark.parametrize("pool_size", [10, 1])  # 1: no connection to spare for helpers
def test_a_backlog_past_the_parallel_threshold_is_indexed_whole(stores, pool_size):
    """A queue longer than PARALLEL_QUEUE is split over several connections on
    PostgreSQL: every message is indexed exactly once, none left queued, and a message
    appended afterwards is found by the next search."""
    from agentkeep.chat.search import PARALLEL_QUEUE

    total = PARALLEL_QUEUE + 4_321
    store = stores.open(pool_size=pool_size)
    session = store.chat.create_session()
    for start in range(0, total, 5_000):
        store.chat.append_many(session.id, [
            {"role": "user", "content": f"queued message number{n} tag{n % 7}"}
            for n in range(start, min(start + 5_000, total))])
    assert store.chat.catch_up_index() == total
    assert store.chat.catch_up_index() == 0
    for n in (0, PARALLEL_QUEUE // 2, total - 1):  # each end and the middle
        hits = store.chat.search(f"number{n}")
        assert [hit.message.content for hit in hits] == [
            f"queued message number{n} tag{n % 7}"]
    assert len(store.chat.search("tag3", limit=10_000)) == len(range(3, total, 7))
    late = store.chat.append(session.id, "user", "appended after the catch up")
    assert [hit.message.id for hit in store.chat.search("appended catch")] == [late.id]


def test_a_message_too_long_for_one_vector_does_not_stop_search(store):
    """1.3 MB of distinct words made a PostgreSQL tsvector over its 1 MB limit: every
    search failed for good. Now such a message is indexed as far as its vector fits
    (all of it on SQLite), and the messages around it are found."""
    session = store.chat.create_session()
    store.chat.append(session.id, "user", "before the long one: apricot")
    long_text = "firstword " + " ".join(f"tok{i:06d}x" for i in range(120_000))
    store.chat.append(session.id, "tool", long_text)
    store.chat.append(session.id, "user", "after the long one: kiwifruit")
    assert found(store, "apricot") == {"before the long one: apricot"}
    assert found(store, "kiwifruit") == {"after the long one: kiwifruit"}
    assert [hit.message.role for hit in store.chat.search("firstword")] == ["tool"]
    assert [hit.message.role for hit in store.chat.search("tok000100x")] == ["tool"]
