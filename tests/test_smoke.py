def test_round_trip(store):
    session = store.chat.create_session(title="Trip")
    store.chat.append(session.id, "user", "Flights to Lisbon?")
    assert [m.content for m in store.chat.history(session.id)] == ["Flights to Lisbon?"]
