"""``GET /metrics``: parses with prometheus-client's parser and matches the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from dispatch.hub import RetryPolicy
from dispatch.reasons import Reason
from tests.control.conftest import CAMPAIGN, answered, control_stack, unanswered

pytestmark = pytest.mark.anyio

FAMILIES = {
    "dispatch_dials": "counter", "dispatch_calls_ended": "counter",
    "dispatch_records_skipped": "counter", "dispatch_retries_scheduled": "counter",
    "dispatch_calls_live": "gauge",
    "dispatch_rate_window_starts": "gauge", "dispatch_rate_limit_per_minute": "gauge",
    "dispatch_concurrency_limit": "gauge", "dispatch_records_pending": "gauge",
    "dispatch_campaign_paused": "gauge", "dispatch_voice_connected": "gauge",
    "dispatch_callbacks_pending": "gauge",
    "dispatch_dial_latency_seconds": "histogram", "dispatch_call_duration_seconds": "histogram",
    "dispatch_build_info": "gauge",  # an info metric, as the text format renders it
}


def samples(body: str) -> tuple[dict[str, str], dict[tuple[str, tuple[Any, ...]], float]]:
    types: dict[str, str] = {}
    values: dict[tuple[str, tuple[Any, ...]], float] = {}
    for family in text_string_to_metric_families(body):
        types[family.name] = family.type
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, values


async def sql(stack: Any, query: str) -> list[Any]:
    async with stack.store.engine.connect() as conn:
        return list(await conn.execute(text(query)))


async def test_metrics_families_and_counters_match_the_database(tmp_path: Path) -> None:
    bad = {"id": "bad1", "phone": "not a phone"}
    records: list[Any] = [*answered(5), *unanswered(2), bad]
    # a no-answer is redialled once, at once; the second no-answer is final
    retry = RetryPolicy(delays_s={Reason.NO_ANSWER: 0.0}, max_attempts=2)
    async with control_stack(tmp_path, records, retry_policy=retry, until_idle=True,
                             max_calls_per_minute=120) as stack:
        await stack.wait_hub_done()
        response = await stack.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        types, values = samples(response.text)
        assert {name: types.get(name) for name in FAMILIES} == FAMILIES

        c = (("campaign", CAMPAIGN),)
        dialled = (await sql(stack, "SELECT count(*) FROM attempts "
                                    "WHERE dialed_at IS NOT NULL"))[0][0]
        assert values[("dispatch_dials_total", c)] == dialled == len(stack.sandbox.dials) == 9
        ended = await sql(stack, "SELECT reason, count(*) FROM attempts "
                                 "WHERE ended_at IS NOT NULL GROUP BY reason")
        assert {reason: n for reason, n in ended} == {"hangup": 5, "no_answer": 4}
        second = await sql(stack, "SELECT count(*) FROM attempts WHERE attempt_no = 2")
        key = ("dispatch_retries_scheduled_total",
               (("campaign", CAMPAIGN), ("reason", "no_answer")))
        assert values[key] == second[0][0] == 2
        for reason, n in ended:
            key = ("dispatch_calls_ended_total", (("campaign", CAMPAIGN), ("reason", reason)))
            assert values[key] == n
        skipped = await sql(stack, "SELECT last_reason, count(*) FROM records "
                                   "WHERE status = 'skipped' GROUP BY last_reason")
        assert len(skipped) == 1
        key = ("dispatch_records_skipped_total",
               (("campaign", CAMPAIGN), ("reason", skipped[0][0])))
        assert values[key] == skipped[0][1] == 1
        assert values[("dispatch_rate_limit_per_minute", c)] == 120
        assert values[("dispatch_concurrency_limit", c)] == 3
        assert values[("dispatch_records_pending", c)] == 0
        assert values[("dispatch_campaign_paused", c)] == 0
        assert values[("dispatch_calls_live", c)] == 0
        assert values[("dispatch_callbacks_pending", c)] == 0  # delivered by the end
        assert values[("dispatch_voice_connected", ())] == 1
        assert values[("dispatch_build_info", (("version", "0.1.0"),))] == 1

        durations = await sql(stack, "SELECT duration_s FROM attempts "
                                     "WHERE duration_s IS NOT NULL")
        assert values[("dispatch_call_duration_seconds_count", c)] == len(durations)
        assert values[("dispatch_call_duration_seconds_sum", c)] == pytest.approx(
            sum(d for (d,) in durations))
        inf = (("campaign", CAMPAIGN), ("le", "+Inf"))
        assert values[("dispatch_dial_latency_seconds_bucket", inf)] == dialled
        le_1 = [v for (name, labels), v in values.items()
                if name == "dispatch_call_duration_seconds_bucket" and ("le", "1.0") in labels]
        assert le_1 == [sum(1 for (d,) in durations if d <= 1.0)]

        # no phone number, no record id in any label
        for (_, labels), _value in values.items():
            for _label, value in labels:
                assert "+1555" not in value and "+1556" not in value
                assert value not in {r.id for r in records[:-1]} | {"bad1"}


async def test_metrics_follow_a_pause(tmp_path: Path) -> None:
    async with control_stack(tmp_path, answered(30)) as stack:
        await stack.wait_for(lambda: stack.dials() >= 2, what="first dials")
        assert (await stack.client.post(f"/v1/campaigns/{CAMPAIGN}/pause")).status_code == 200
        _, values = samples((await stack.client.get("/metrics")).text)
        c = (("campaign", CAMPAIGN),)
        assert values[("dispatch_campaign_paused", c)] == 1
        assert values[("dispatch_records_pending", c)] > 0
        assert values[("dispatch_rate_window_starts", c)] >= 2
