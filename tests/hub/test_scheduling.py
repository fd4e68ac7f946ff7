"""DialQueue: phone locks, parking and due times."""

from __future__ import annotations

from dispatch.hub.scheduling import DialQueue

PHONES = {"a": "+1", "b": "+1", "c": "+2"}


def test_same_phone_is_parked_and_released_to_the_front():
    queue = DialQueue()
    for rid in "abc":
        queue.add_ready(rid)
    assert queue.take(10, PHONES.__getitem__) == ["a", "c"]
    assert queue.parked_count == 1
    assert queue.take(10, PHONES.__getitem__) == []
    queue.release_phone("+1")
    assert queue.parked_count == 0
    assert queue.take(10, PHONES.__getitem__) == ["b"]


def test_timed_records_promote_when_due():
    queue = DialQueue()
    queue.add_timed("a", 100.0)
    queue.add_timed("c", 50.0)
    assert queue.next_due_at() == 50.0
    assert queue.promote_due(49.0) == 0
    assert queue.promote_due(100.0) == 2
    assert queue.take(1, PHONES.__getitem__) == ["c"]
    assert not queue.is_empty()
