"""Store side of requeue: a fresh round, and a requeued record's source row refresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.store import RequeueFilter, Store, insert_attempt, insert_record, refresh_record

pytestmark = pytest.mark.anyio


def _rec(rid: str, status: str, phone: str = "4155550101"):
    return insert_record(id=rid, phone=phone, strategy="s", status=status,
                         payload={"metadata": {"name": "old"}}, now=1.0,
                         last_reason="invalid_phone" if status == "skipped" else None)


async def test_only_requeued_undialled_records_can_be_refreshed(tmp_path: Path):
    async with await Store.open(tmp_path / "r.db") as store:
        await store.write_now([_rec("skip", "skipped"), _rec("other", "skipped"),
                               _rec("live", "dialing")])
        await store.write_now([insert_attempt(source="s",
                                              record_id="live", attempt_no=1, run_id=None,
                                              phone="+1", claimed_at=1.0)])
        result = await store.requeue(RequeueFilter(ids=("skip", "live")), now=5.0,
                                     user="op@host", pid=1)
        assert (result.count, result.first_ids, result.requeue_id) == (1, ["skip"], 1)
        assert await store.requeued_pending_keys() == {("s", "skip")}
        fresh = {"metadata": {"name": "new"}}
        await store.write_now([
            refresh_record(source="s", id=rid, phone="+14155550101", payload=fresh, now=6.0)
            for rid in ("skip", "other", "live")
        ])
        rows = {r["id"]: r for r in await store.report_rows()}
        assert await store.reason_counts() == {"invalid_phone": 1}  # the requeued one: none
    assert (rows["skip"]["phone"], rows["skip"]["lead"]) == ("+14155550101", {"name": "new"})
    assert rows["skip"]["status"] == "pending" and rows["skip"]["requeue_count"] == 1
    for untouched in ("other", "live"):  # not requeued / being dialled: never rewritten
        assert rows[untouched]["lead"] == {"name": "old"}
        assert rows[untouched]["phone"] == "4155550101"


def test_a_filter_is_required_and_only_terminal_statuses() -> None:
    with pytest.raises(ValueError, match="at least one filter"):
        RequeueFilter()
    with pytest.raises(ValueError, match="cannot be requeued"):
        RequeueFilter(statuses=("dialing",))
    assert RequeueFilter(everything=True).as_dict() == {"all": True}
