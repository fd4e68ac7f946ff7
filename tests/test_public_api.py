"""The public surface is deliberate: this test fails when it drifts."""

import dispatch

EXPECTED = {
    "Agent",
    "AuthenticationError",
    "Call",
    "Clock",
    "ConnectionLost",
    "CsvStrategy",
    "DialFailed",
    "DispatchHub",
    "HubStatistics",
    "Outcome",
    "Pinecall",
    "PinecallError",
    "Record",
    "RecordFailed",
    "Reason",
    "RegistrationError",
    "RetryPolicy",
    "Sandbox",
    "SlidingWindowLimiter",
    "Strategy",
    "SystemClock",
    "tool",
    # the library inside schedulers (issue 11)
    "run_campaign",
    "CampaignResult",
    "DispatchConfig",
}


def test_all_is_exactly_the_documented_surface() -> None:
    assert set(dispatch.__all__) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in dispatch.__all__:
        assert getattr(dispatch, name) is not None, name


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        dispatch.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_lazy_export_table_matches_all() -> None:
    assert set(dispatch._EXPORTS) == set(dispatch.__all__)
