"""admit(): what one poll's items become."""

from __future__ import annotations

from dispatch.hub.ingest import admit
from dispatch.reasons import Reason
from dispatch.records import Record


def test_a_bad_row_is_reported_once_not_at_every_poll():
    items = [{"id": "x", "phone": "+15550000001", "greeting": ["not", "text"]},
             Record(id="x", phone="+15550000002")]
    first = admit(items, known=set(), default_region=None)
    assert [(s.record.id, s.reason) for s in first.skipped] == [
        ("x", Reason.INVALID_RECORD), ("x", Reason.DUPLICATE)
    ]
    assert first.rejected == [] and first.new == []
    again = admit(items, known={"x"}, default_region=None)
    assert (again.new, again.skipped, again.rejected) == ([], [], [])


def test_rows_without_an_id_are_rejected_every_time():
    items = [{"phone": "+15550000001"}]
    assert len(admit(items, known=set(), default_region=None).rejected) == 1
    assert len(admit(items, known=set(), default_region=None).rejected) == 1
