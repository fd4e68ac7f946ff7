"""The compliance options of ``run``/``check`` (issue 9): each bad value is one line
naming the option; good ones build the settings the hub gets."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest

from dispatch.cli import options
from dispatch.cli.compliance_opts import build_compliance, default_sandbox_time
from dispatch.cli.errors import CliError
from dispatch.cli.main import build_parser
from dispatch.compliance.window import CallingHours
from tests.cli.conftest import run_cli


@pytest.mark.parametrize(("text", "expected"), [
    ("08:00-21:00", (None, "08:00-21:00")),
    ("mon-fri=09:00-12:00,14:00-20:00", (("mon", "tue", "wed", "thu", "fri"),
                                         "09:00-12:00,14:00-20:00")),
    ("sun=closed", (("sun",), "")),
    ("SAT=10:00-14:00", (("sat",), "10:00-14:00")),
])
def test_calling_hours_values(text: str, expected: object) -> None:
    assert options.calling_hours(text) == expected


@pytest.mark.parametrize("text", ["21:00-08:00", "xyz=08:00-09:00", "fri-mon=08:00-09:00",
                                  "8-9", "08:00-25:00"])
def test_bad_calling_hours_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        options.calling_hours(text)


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", "x.csv", *argv])


def test_options_build_the_settings() -> None:
    args = _args("--calling-hours", "09:00-20:00", "--calling-hours", "sun=closed",
                 "--holiday", "2026-12-25", "--holiday", "2026-12-24=09:00-13:00",
                 "--fallback-zone", "Europe/Madrid", "--max-per-phone-24h", "2",
                 "--campaign-daily-cap", "100", "--no-state-rules")
    compliance = build_compliance(args, embedded=False, now_s=0.0)
    settings = compliance.settings
    expected = CallingHours.from_mapping({"default": "09:00-20:00", "sun": "",
                                          "holidays": {"2026-12-25": "",
                                                       "2026-12-24": "09:00-13:00"}})
    assert settings.calling_hours == expected
    assert (settings.fallback_zone, settings.phone_cap, settings.campaign_cap) == (
        "Europe/Madrid", 2, 100)
    assert settings.state_rules is None and compliance.sandbox_time_s is None


def test_sandbox_time_defaults_and_real() -> None:
    now = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC).timestamp()
    default = build_compliance(_args(), embedded=True, now_s=now)
    assert default.sandbox_time_s == default_sandbox_time(now) == \
        dt.datetime(2026, 3, 10, 18, 0, tzinfo=dt.UTC).timestamp()
    assert build_compliance(_args("--sandbox-time", "real"), embedded=True,
                            now_s=now).sandbox_time_s is None
    chosen = build_compliance(_args("--sandbox-time", "2026-03-10T20:55:00-05:00"),
                              embedded=True, now_s=now)
    assert chosen.sandbox_time_s == dt.datetime(2026, 3, 11, 1, 55, tzinfo=dt.UTC).timestamp()
    with pytest.raises(CliError, match="--sandbox-time"):
        build_compliance(_args("--sandbox-time", "2026-03-10T10:00:00Z"), embedded=False,
                         now_s=now)


def test_closed_every_day_is_refused_before_dialling(tmp_path: Path) -> None:
    args = _args(*[a for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
                   for a in ("--calling-hours", f"{day}=closed")])
    with pytest.raises(CliError) as raised:
        build_compliance(args, embedded=True, now_s=0.0)
    assert raised.value.exit_code == 2 and raised.value.option == "--calling-hours"
    assert str(raised.value).startswith("--calling-hours: the window is closed on every")


def test_bad_values_are_one_line_exit_2(tmp_path: Path) -> None:
    leads = tmp_path / "l.csv"
    leads.write_text("phone\n+14155550101\n", encoding="utf-8")
    for option, value in (("--calling-hours", "21:00-08:00"), ("--fallback-zone", "Mars/Base"),
                          ("--holiday", "2026-13-01"), ("--sandbox-time", "yesterday"),
                          ("--max-per-phone-24h", "0")):
        result = run_cli("run", str(leads), option, value, "--db", str(tmp_path / "d.db"),
                         cwd=tmp_path)
        assert result.returncode == 2, (option, result.stderr)
        assert result.stderr.count("\n") == 1 and option in result.stderr
    missing = run_cli("run", str(leads), "--dnc-file", str(tmp_path / "nope.txt"), "--db",
                      str(tmp_path / "d.db"), cwd=tmp_path)
    assert missing.returncode == 2 and "--dnc-file" in missing.stderr
