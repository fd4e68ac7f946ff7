"""Shared vocabulary: reasons, E.164, Record, log redaction, the memory transport."""

from __future__ import annotations

import io
import json

import anyio
import pytest
from pydantic import ValidationError

from dispatch.log import configure_logging, get_logger, register_secret
from dispatch.phone import InvalidPhone, normalize_phone
from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.sdk.reasons import normalize_reason
from dispatch.sdk.transport import TransportClosed, memory_pair


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("no-answer", Reason.NO_ANSWER),
        ("no_answer", Reason.NO_ANSWER),
        ("No-Answer", Reason.NO_ANSWER),
        ("canceled", Reason.CANCELED),
        ("cancelled", Reason.CANCELED),
        ("hangup", Reason.HANGUP),
        ("caller_hangup", Reason.HANGUP),
        ("busy", Reason.BUSY),
        ("failed", Reason.FAILED),
        ("max_duration", Reason.MAX_DURATION),
        ("idle_timeout", Reason.IDLE_TIMEOUT),
        ("connection_lost", Reason.DISCONNECTED),
        ("Dial timeout", Reason.TIMEOUT),
        ("", Reason.UNKNOWN),
        (None, Reason.UNKNOWN),
        ("something new", Reason.UNKNOWN),
    ],
)
def test_reason_vocabulary_is_normalised_once(raw: str | None, expected: Reason) -> None:
    assert normalize_reason(raw) is expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 (415) 555-0101", None, "+14155550101"),
        ("415-555-0101", "US", "+14155550101"),
        ("0034 611 234 567", None, "+34611234567"),
        ("+44 20 7946 0018", None, "+442079460018"),
        ("sip:agent@example.com", None, "sip:agent@example.com"),
    ],
)
def test_normalize_phone(raw: str, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "555-12", "abc", "+1555", None])
def test_invalid_phones_say_why(raw: str | None) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(raw)
    assert info.value.why


@pytest.mark.parametrize(
    "raw",
    [
        "+1 (415) abc-0000",  # phonenumbers would dial +14152220000
        "+1555ABC1234",  # ... and +15552221234
        "1-800-FLOWERS",
        "tel:+1555ABC1234",
    ],
)
def test_a_phone_with_letters_is_refused_not_mapped_to_keypad_digits(raw: str) -> None:
    with pytest.raises(InvalidPhone, match="letters"):
        normalize_phone(raw, "US")


@pytest.mark.parametrize(
    ("raw", "extension"),
    [
        ("+1 415 555 0100 x123", "x123"),
        ("+14155550100x123", "x123"),
        ("+1 415 555 0100 ext. 5", "ext. 5"),
        ("+1 415 555 0100 extension 12", "extension 12"),
        ("+14155550100;ext=5", ";ext=5"),
        ("tel:+14155550100;ext=5", ";ext=5"),
        ("+14155550100#123", "#123"),
        ("415 555 0100 x9", "x9"),
    ],
)
def test_a_phone_with_an_extension_is_refused_saying_so(raw: str, extension: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(raw, "US")
    assert f"extension ({extension})" in info.value.why
    assert "cannot be dialled" in info.value.why


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("tel:+14155550100", "+14155550100"),
        ("tel:+1-415-555-0100", "+14155550100"),
        ("TEL:+1 (415) 555.0100", "+14155550100"),
    ],
)
def test_tel_uris_are_accepted_as_e164(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected
    assert Record(id="t", phone=raw).phone == expected


def test_tel_uri_parameters_other_than_a_bare_number_are_refused() -> None:
    with pytest.raises(InvalidPhone, match="parameters"):
        normalize_phone("tel:+14155550100;phone-context=example.com")


def test_no_country_code_is_still_flagged_for_the_region_hint() -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone("415 555 0100")
    assert info.value.no_country_code
    with pytest.raises(InvalidPhone) as info:
        normalize_phone("+1555ABC1234")
    assert not info.value.no_country_code


def test_record_never_fails_on_a_bad_phone() -> None:
    record = Record(id="r1", phone="555-12")
    assert record.phone == "555-12"
    assert record.phone_error is not None
    good = Record(id=7, phone="415 555 0101", default_region="US", prompt_vars={"n": 3})
    assert (good.id, good.phone, good.phone_error) == ("7", "+14155550101", None)
    assert good.prompt_vars == {"n": "3"}


def test_record_other_fields_are_validated_and_named() -> None:
    with pytest.raises(ValidationError) as info:
        Record(id="", phone="+14155550101")
    assert "id" in str(info.value)


def test_record_invalid_detail_and_naive_not_before_is_utc() -> None:
    import datetime as dt

    record = Record(
        id="x",
        phone="+14155550101",
        metadata={"_invalid": "row 3: greeting field 'name' is empty"},
        not_before=dt.datetime(2026, 1, 1, 9, 0),
    )
    assert record.invalid_detail == "row 3: greeting field 'name' is empty"
    assert record.not_before is not None and record.not_before.tzinfo is dt.UTC


def test_secrets_never_reach_a_log_line() -> None:
    secret = "pk_live_0123456789abcdef"
    register_secret(secret)
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    log = get_logger("test")
    error = RuntimeError(f"bad key {secret}")
    log.error("refused", api_key=secret, error=error, url=f"x?k={secret}")
    line = stream.getvalue()
    assert secret not in line
    event = json.loads(line)
    assert event["api_key"] == "***"
    assert event["component"] == "test"


@pytest.mark.anyio
async def test_memory_pair_carries_frames_and_close_codes() -> None:
    client, server = memory_pair()
    await client.send("hello")
    assert await server.recv() == "hello"
    await server.close(1008, "invalid api key")
    with pytest.raises(TransportClosed) as info:
        await client.recv()
    assert (info.value.code, info.value.reason) == (1008, "invalid api key")
    await client.close()
    with anyio.fail_after(1), pytest.raises(TransportClosed):
        await server.send("late")


@pytest.mark.anyio
async def test_memory_pair_send_waits_for_a_slow_reader_and_the_close_follows_the_data(
        ) -> None:
    client, server = memory_pair(buffer_frames=2)
    await client.send("1")
    await client.send("2")
    sent = anyio.Event()

    async def third() -> None:
        await client.send("3")  # the buffer is full: waits like a socket would
        sent.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(third)
        with anyio.move_on_after(0.05):
            await sent.wait()
        assert not sent.is_set(), "a full buffer must hold the writer back"
        assert await server.recv() == "1"  # one read makes room
        with anyio.fail_after(1):
            await sent.wait()
    await client.close(4001, "bye")  # queued frames are still read before the close
    assert [await server.recv(), await server.recv()] == ["2", "3"]
    with pytest.raises(TransportClosed) as info:
        await server.recv()
    assert (info.value.code, info.value.reason) == (4001, "bye")
    with pytest.raises(ValueError, match="buffer_frames"):
        memory_pair(buffer_frames=0)


def test_library_loggers_get_frames_masked() -> None:
    import logging

    from dispatch.log import secret_safe_logger

    register_secret("pk_frame_secret_42")
    stream = io.StringIO()
    logger = secret_safe_logger("tests.frames")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("> TEXT %s", '{"event":"connect","api_key":"pk_frame_secret_42"}')
        logger.debug("> TEXT %s", '{"event":"connect","api_key":"unregistered_but_a_ke...')
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "pk_frame_secret_42" not in text and "unregistered" not in text
    assert text.count('"api_key":"***') == 2


@pytest.mark.parametrize(
    ("value", "ok"),
    [("+14155550101", True), ("sip:agent@example.com", True), ("SIP:x@y", True),
     ("4155550101", False), ("+0123456789", False), (None, False), ("", False)],
)
def test_is_dialable(value: object, ok: bool) -> None:
    from dispatch.phone import is_dialable

    assert is_dialable(value) is ok
