"""Every refusal of the webhook intake over real loopback HTTP (httpx -> uvicorn), each
checking the store holds nothing new, with the accepted request as positive control."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from .helpers import (
    OTHER,
    SECRET,
    body_of,
    intake,
    intake_count,
    rec,
    signed_headers,
)

pytestmark = pytest.mark.anyio

WRONG = "whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="


async def _post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=body, headers=headers)


async def test_signed_batch_is_committed_before_202(tmp_path: Path):
    async with intake(tmp_path) as (strategy, store):
        body = body_of(rec(1), rec(2, metadata={"name": "Ann"}))
        response = await _post(strategy.url, body, signed_headers(body))
        assert response.status_code == 202
        assert response.json()["ids"] == ["w1", "w2"]
        assert await intake_count(store) == 2  # committed when the 202 arrived
        records = await strategy.poll()
        assert [(r.id, r.phone, r.metadata) for r in records] == [
            ("w1", "+15550000001", {}), ("w2", "+15550000002", {"name": "Ann"})]


async def test_a_rotated_secret_signs_too(tmp_path: Path):
    async with intake(tmp_path) as (strategy, store):
        body = body_of(rec(1))
        response = await _post(strategy.url, body, signed_headers(body, secret=OTHER))
        assert response.status_code == 202
        assert await intake_count(store) == 1


@pytest.mark.parametrize("case", ["no_auth", "bad_signature", "wrong_secret", "old", "future",
                                  "garbled_signature"])
async def test_unauthenticated_requests_are_refused(tmp_path: Path, case: str):
    body = body_of(rec(1))
    headers = signed_headers(body)
    if case == "no_auth":
        headers = {"content-type": "application/json"}
    elif case == "bad_signature":
        headers = signed_headers(body_of(rec(2)))  # signed another body
        headers["webhook-id"] = signed_headers(body)["webhook-id"]
    elif case == "wrong_secret":
        headers = signed_headers(body, secret=WRONG)
    elif case == "old":
        headers = signed_headers(body, at=time.time() - 320)
    elif case == "future":
        headers = signed_headers(body, at=time.time() + 320)
    elif case == "garbled_signature":
        headers["webhook-signature"] = "v1,not base64!! v2 ,,"
    async with intake(tmp_path) as (strategy, store):
        response = await _post(strategy.url, body, headers)
        assert response.status_code == 401, response.text
        assert SECRET not in response.text and "whsec_" not in response.text
        assert await intake_count(store) == 0
        assert await strategy.poll() == []
        # positive control: the same intake accepts the properly signed request
        assert (await _post(strategy.url, body, signed_headers(body))).status_code == 202
        assert await intake_count(store) == 1


async def test_timestamps_just_inside_the_tolerance_are_accepted(tmp_path: Path):
    async with intake(tmp_path) as (strategy, store):
        for i, skew in enumerate((-290, 290)):
            body = body_of(rec(i))
            headers = signed_headers(body, at=time.time() + skew)
            assert (await _post(strategy.url, body, headers)).status_code == 202
        assert await intake_count(store) == 2


async def test_a_replayed_webhook_id_gets_the_first_answer_and_enqueues_nothing(
    tmp_path: Path,
):
    async with intake(tmp_path) as (strategy, store):
        body = body_of(rec(1))
        headers = signed_headers(body, msg_id="msg_replay")
        first = await _post(strategy.url, body, headers)
        assert first.status_code == 202
        again = await _post(strategy.url, body, headers)
        assert (again.status_code, again.json()) == (202, first.json())
        assert again.headers["idempotent-replayed"] == "true"
        other = body_of(rec(7))  # same id, another (validly signed) body
        replay = await _post(strategy.url, other, signed_headers(other, msg_id="msg_replay"))
        assert replay.json() == first.json()
        assert await intake_count(store) == 1


async def test_a_replay_after_a_restart_still_gets_the_first_answer(tmp_path: Path):
    body = body_of(rec(1))
    headers = signed_headers(body, msg_id="msg_durable")
    async with intake(tmp_path) as (strategy, store):
        first = await _post(strategy.url, body, headers)
        assert first.status_code == 202
    async with intake(tmp_path) as (strategy, store):  # a new process: empty memory
        again = await _post(strategy.url, body, headers)
        assert (again.status_code, again.json()) == (202, first.json())
        assert await intake_count(store) == 1


async def test_oversize_bodies_are_refused_before_being_read(tmp_path: Path):
    async with intake(tmp_path, max_body_bytes=2000) as (strategy, store):
        big = body_of(*[rec(i, metadata={"pad": "x" * 100}) for i in range(30)])
        assert len(big) > 2000
        response = await _post(strategy.url, big, signed_headers(big))
        assert response.status_code == 413
        sent: list[int] = []

        async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length
            for start in range(0, len(big), 500):
                sent.append(start)
                yield big[start:start + 500]

        async with httpx.AsyncClient() as client:
            streamed = await client.post(strategy.url, content=chunks(),
                                         headers=signed_headers(big))
        assert streamed.status_code == 413
        assert await intake_count(store) == 0
        small = body_of(rec(1))
        assert (await _post(strategy.url, small, signed_headers(small))).status_code == 202


async def test_malformed_json_wrong_type_and_bad_records(tmp_path: Path):
    async with intake(tmp_path) as (strategy, store):
        broken = b'{"records": [{"id": "a", "phone": '
        assert (await _post(strategy.url, broken, signed_headers(broken))).status_code == 400
        body = body_of(rec(1))
        headers = {**signed_headers(body), "content-type": "text/plain"}
        assert (await _post(strategy.url, body, headers)).status_code == 415
        bad = body_of(rec(0), {"id": "b", "phone": "not a phone"}, {"id": "c"},
                      {"id": "d", "phone": "+15550000009", "colour": "red"},
                      {"id": "e", "phone": 15550000009})
        response = await _post(strategy.url, bad, signed_headers(bad))
        assert response.status_code == 422
        locs = {(e["index"], e["field"]) for e in response.json()["errors"]}
        assert locs == {(1, "phone"), (2, "phone"), (3, "colour"), (4, "phone")}
        assert await intake_count(store) == 0
        assert (await _post(strategy.url, body, signed_headers(body))).status_code == 202


async def test_over_the_queue_limit_is_429_with_retry_after(tmp_path: Path):
    async with intake(tmp_path, max_pending=3, retry_after_s=7) as (strategy, store):
        three = body_of(rec(1), rec(2), rec(3))
        assert (await _post(strategy.url, three, signed_headers(three))).status_code == 202
        one = body_of(rec(4))
        response = await _post(strategy.url, one, signed_headers(one))
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert await intake_count(store) == 3


async def test_bearer_token_and_idempotency_key(tmp_path: Path):
    from .helpers import TOKEN

    async with intake(tmp_path, token=TOKEN) as (strategy, store):
        body = json.dumps(rec(1)).encode()  # a single record object
        plain = {"content-type": "application/json"}
        for auth in ("", "Bearer wrong-token-wrong-token", f"Basic {TOKEN}"):
            headers = {**plain, "authorization": auth} if auth else plain
            assert (await _post(strategy.url, body, headers)).status_code == 401
        assert await intake_count(store) == 0
        good = {**plain, "authorization": f"Bearer {TOKEN}", "idempotency-key": "k1"}
        first = await _post(strategy.url, body, good)
        assert first.status_code == 202 and first.json()["ids"] == ["w1"]
        again = await _post(strategy.url, body, good)
        assert again.json() == first.json()
        assert await intake_count(store) == 1


async def test_idempotency_answers_expire_after_their_ttl(tmp_path: Path):
    body = body_of(rec(1))
    headers = signed_headers(body, msg_id="msg_old")
    async with intake(tmp_path) as (strategy, store):
        assert (await _post(strategy.url, body, headers)).status_code == 202
    async with intake(tmp_path, idempotency_ttl_s=3600) as (strategy, store):
        again = await _post(strategy.url, body, headers)  # kept: within its TTL
        assert again.headers.get("idempotent-replayed") == "true"
    await anyio.sleep(0.05)
    async with intake(tmp_path, idempotency_ttl_s=0.01) as (strategy, store):
        fresh = await _post(strategy.url, body, headers)  # pruned at start: a new request
        assert fresh.status_code == 202 and "idempotent-replayed" not in fresh.headers
        assert await intake_count(store) == 2
