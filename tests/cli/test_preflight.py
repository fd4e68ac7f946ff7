"""``dispatch run`` refuses bad values and campaign-wide mistakes before anyone is dialled."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from dispatch.cli.errors import CliError, translate
from dispatch.cli.main import build_parser, main
from dispatch.errors import CampaignError, PreflightError, SourceFailing, SourceUnusable
from dispatch.records import Record
from dispatch.sdk import AuthenticationError, RegistrationError
from dispatch.strategy import Outcome, Strategy
from tests.cli.conftest import SandboxServer, run_cli

FAST = ("--sandbox-speed", "200", "--poll", "0.2")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--rate", "abc"),
        ("--rate", "0"),
        ("--concurrency", "-1"),
        ("--retries", "-1"),
        ("--poll", "0"),
        ("--poll", "inf"),
        ("--retry-delay", "soon"),
        ("--sandbox-speed", "0"),
        ("--sandbox-speed", "nan"),
        ("--region", "XX"),
        ("--from", "12345"),
        ("--from", "+1 415 abc"),
        ("--url", "http://voice.example"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_option(
    option: str, value: str, leads: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(leads), "--db", str(tmp_path / "x.db"), option, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"argument {option}:" in err and repr(value) in err
    assert not (tmp_path / "x.db").exists(), "nothing was opened, nobody was dialled"


@pytest.mark.parametrize(("option", "value"), [("--port", "99999"), ("--speed", "0")])
def test_a_bad_sandbox_value_is_one_line_too(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sandbox", option, value])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"dispatch sandbox: error: argument {option}:")


def test_values_are_normalised() -> None:
    args = build_parser().parse_args(
        ["run", "x.csv", "--from", "+1 415 555 0000", "--region", "gb", "--sandbox-speed", "inf"]
    )
    assert args.from_ == "+14155550000"
    assert args.region == "GB"
    assert args.sandbox_speed == float("inf")


def test_a_remote_server_without_caller_id_is_refused_before_dialling(
    leads: Path, tmp_path: Path, sandbox_server: SandboxServer
) -> None:
    db = tmp_path / "remote.db"
    refused = run_cli("run", str(leads), "--url", sandbox_server.url, "--db", str(db),
                      "--poll", "0.2", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stderr.count("\n") == 1 and "--from" in refused.stderr
    assert sandbox_server.dials() == []
    if db.exists():  # nothing was burnt: no record is terminal
        with sqlite3.connect(db) as conn:
            done = conn.execute("SELECT count(*) FROM records WHERE status != 'pending'")
            assert done.fetchone() == (0,)

    fixed = run_cli("run", str(leads), "--url", sandbox_server.url, "--db", str(db),
                    "--from", "+1 415 555 0000", "--poll", "0.2", "--json-logs",
                    "--calling-hours", "00:00-24:00",  # issue 9: real clock with --url
                    cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    summary = json.loads(fixed.stdout)
    assert summary["counts"] == {"completed": 4, "failed": 3, "skipped": 1}
    assert {d["from"] for d in sandbox_server.dials()} == {"+14155550000"}


# -- strategy.preflight() and campaign errors, through the run command's strategy seam --


class _Source(Strategy):
    """One record; ``preflight`` raises ``errors`` one by one (then passes)."""

    name = "fake"

    def __init__(self, errors: Sequence[BaseException] = ()) -> None:
        self.errors = list(errors)
        self.polls = 0
        self.outcomes: list[Outcome] = []

    async def preflight(self) -> None:
        if self.errors:
            raise self.errors.pop(0)

    async def poll(self) -> list[Record]:
        self.polls += 1
        if self.polls == 300:  # about a minute: the record never finished, end the test
            signal.raise_signal(signal.SIGINT)
        return [Record(id="r1", phone="+14155550101")]

    async def record_outcome(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        signal.raise_signal(signal.SIGINT)  # --follow never ends by itself: stop it


def _run_with(source: _Source, tmp_path: Path, *extra: str) -> int:
    csv = tmp_path / "leads.csv"
    csv.write_text("name,phone\n", encoding="utf-8")
    args = build_parser().parse_args(
        ["run", str(csv), "--db", str(tmp_path / "s.db"), *FAST, *extra]
    )
    args.make_strategy = lambda _args: source
    code: int = args.func(args)
    return code


@pytest.mark.parametrize(
    "error",
    [
        PreflightError("--greeting uses {first_name}; the columns are name, phone",
                       option="--greeting"),
        SourceUnusable("leads.csv is empty (expected a header with a phone column)",
                       source="leads.csv"),
    ],
)
def test_a_preflight_mistake_exits_2_with_its_line_and_dials_nobody(
    error: PreflightError, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _Source([error])
    assert _run_with(source, tmp_path) == 2
    err = capsys.readouterr().err
    assert err == f"dispatch: error: {error}\n"
    assert source.polls == 0 and not (tmp_path / "s.db").exists()


def test_a_preflight_mistake_is_a_json_line_with_json_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    error = PreflightError("--greeting uses {first_name}", option="--greeting")
    assert _run_with(_Source([error]), tmp_path, "--json-logs") == 2
    (line,) = capsys.readouterr().err.splitlines()
    event = json.loads(line)
    assert event["event"] == "error" and event["option"] == "--greeting"
    assert event["message"] == str(error) and event["exit_code"] == 2


def test_follow_warns_about_an_unusable_source_and_keeps_going(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _Source([SourceUnusable("leads.csv not found", source="leads.csv")])
    code = _run_with(source, tmp_path, "--follow", "--json-logs")
    assert code == 0, capsys.readouterr().err[-3000:]
    assert [o.status for o in source.outcomes] == ["completed"], "it went on and dialled"
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    warnings = [e for e in events if e["event"] == "source unusable"]
    assert len(warnings) == 1 and "leads.csv not found" in warnings[0]["message"]


def test_a_campaign_error_is_one_line_and_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _Source([CampaignError("every dial failed: no caller id on agent 'a'")])
    assert _run_with(source, tmp_path) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no caller id on agent 'a'" in err
    assert "records not dialled stay pending" in err and "Traceback" not in err


def _caused_by(cause: BaseException | None) -> CampaignError:
    error = CampaignError("every dial failed the same way")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (_caused_by(AuthenticationError("refused", code="INVALID_KEY")), 3),
        (_caused_by(RegistrationError("agent refused", code="AGENT_TAKEN")), 3),
        (_caused_by(None), 1),
        (SourceFailing("poll of 'csv' raised 5 times", source="csv"), 1),
        (PreflightError("bad --region", option="--region"), 2),
        (ExceptionGroup("tg", [ExceptionGroup("inner", [CliError("no caller id", 2)])]), 2),
    ],
)
def test_how_each_way_a_run_ends_maps_to_an_exit_code(error: BaseException, code: int) -> None:
    translated = translate(error)
    assert translated is not None and translated.exit_code == code
    assert "\n" not in str(translated)


def test_an_unknown_error_keeps_its_traceback() -> None:
    assert translate(ValueError("a bug")) is None
    assert translate(ExceptionGroup("tg", [CliError("x", 2), ValueError("a bug")])) is None

