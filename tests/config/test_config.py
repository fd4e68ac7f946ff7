"""The config model: key-path errors, secrets refused, env overrides, run flags, windows."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from dispatch.cli.main import build_parser
from dispatch.config import ConfigError, load_config, parse_config
from dispatch.config.build import hub_kwargs
from dispatch.config.from_args import config_from_run_args
from dispatch.config.model import ScheduleWindow
from dispatch.daemon.notify import SystemdNotifier, watchdog_interval_s
from dispatch.daemon.schedule import window_state
from dispatch.hub.retry import DEFAULT_DELAYS_S
from dispatch.reasons import Reason

ROOT = Path(__file__).resolve().parents[2]


def base(**campaign: Any) -> dict[str, Any]:
    return {"campaigns": [{"name": "rem", "sources": [{"kind": "csv", "path": "x.csv"}],
                           **campaign}]}


def errors(data: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, environ=environ or {})
    return info.value.errors


def test_each_error_names_its_key_path_and_value() -> None:
    found = errors(base(limits={"max_per_minute": 0, "max_concurrent": "many"},
                        sources=[{"kind": "csv", "path": "a.csv", "region": "XX"}],
                        agent={"from": "12"}, surprise=True))
    assert found == [
        "campaigns[0].sources[0].region: unknown region (expected a two-letter country code "
        "such as US) (got 'XX')",
        "campaigns[0].agent.from: not a caller id: no country code and no default region "
        "(got '12')",
        "campaigns[0].limits.max_per_minute: Input should be greater than 0 (got 0)",
        "campaigns[0].limits.max_concurrent: Input should be a valid integer, unable to parse "
        "string as an integer (got 'many')",
        "campaigns[0].surprise: Extra inputs are not permitted (got True)",
    ]


def test_an_unknown_source_kind_names_the_discriminator() -> None:
    found = errors(base(sources=[{"kind": "ftp", "path": "x"}]))
    assert len(found) == 1 and found[0].startswith("campaigns[0].sources[0]: Input tag 'ftp'")


@pytest.mark.parametrize("where", [
    {"voice": {"api_key": "pk_live_HUSH"}},
    {"campaigns": [{"name": "r", "sources": [{"kind": "csv", "path": "x"}],
                    "webhooks": [{"url": "https://h", "secret": "whsec_HUSH"}]}]},
    {"control": {"token": "HUSH"}, "campaigns": []},
])
def test_a_secret_in_the_file_is_refused_without_echo(where: dict[str, Any]) -> None:
    data = {**base(), **where}
    found = errors(data)
    assert found and all("secrets are not read from the config file" in e for e in found)
    assert "HUSH" not in " ".join(found)


def test_environment_overrides_by_campaign_name_or_index() -> None:
    config = parse_config(base(name="day-reminders"), environ={
        "DISPATCH_CAMPAIGNS__DAY_REMINDERS__LIMITS__MAX_PER_MINUTE": "30",
        "DISPATCH_CAMPAIGNS__0__AGENT__FROM": "+1 415 555 0000",
        "dispatch_store": "/tmp/other.db",
        "DISPATCH_CONTROL__BIND": "127.0.0.1:9000",
        "DISPATCH_CAMPAIGNS__0__DNC": '["a.txt", "b.txt"]',
        "DISPATCH_CONFIG": "/etc/dispatch/dispatch.toml",  # not a setting
    })
    campaign = config.campaigns[0]
    assert campaign.limits.max_per_minute == 30 and campaign.agent.caller_id == "+14155550000"
    assert (config.store, config.control.port) == ("/tmp/other.db", 9000)
    assert [p.name for p in campaign.dnc] == ["a.txt", "b.txt"]


def test_a_bad_override_names_the_variable() -> None:
    found = errors(base(), environ={"DISPATCH_CAMPAIGNS__REM__LIMITS__MAX_CONCURRENT": "-1",
                                    "DISPATCH_RATE": "3", "DISPATCH_CAMPAIGNS__NOPE__POLL": "1",
                                    "DISPATCH_VOICE__API_KEY": "pk_HUSH"})
    assert "DISPATCH_CAMPAIGNS__NOPE__POLL (environment): no campaign 'nope' at campaigns" \
        in found
    assert any(e.startswith("DISPATCH_VOICE__API_KEY (environment): secrets") for e in found)
    assert "HUSH" not in " ".join(found)
    found = errors(base(), environ={"DISPATCH_CAMPAIGNS__REM__LIMITS__MAX_CONCURRENT": "-1",
                                    "DISPATCH_RATE": "3"})
    assert found == [
        "campaigns[0].limits.max_concurrent (from DISPATCH_CAMPAIGNS__REM__LIMITS__"
        "MAX_CONCURRENT): Input should be greater than 0 (got '-1')",
        "rate (from DISPATCH_RATE): Extra inputs are not permitted (got '3')"]


def test_shipped_example_configs_are_valid() -> None:
    for path in (ROOT / "examples/dispatch.toml", ROOT / "deploy/dispatch.toml"):
        config = load_config(path, environ={})
        assert config.campaigns[0].name


def test_a_toml_syntax_error_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("store = \n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert len(info.value.errors) == 1 and "not valid TOML" in info.value.errors[0]


def test_run_flags_map_onto_the_model() -> None:
    args = build_parser().parse_args([
        "run", "leads.csv", "--rate", "12", "--cps", "1", "--concurrency", "3", "--retries",
        "2", "--retry-delay", "30", "--from", "+1 415 555 0000", "--region", "gb",
        "--greeting", "Hi {name}", "--campaign", "spring", "--poll", "2", "--db", "x.db"])
    config = config_from_run_args(args)
    campaign = config.campaigns[0]
    assert (config.store, campaign.name, campaign.poll_interval_s) == ("x.db", "spring", 2.0)
    assert campaign.sources[0].greeting == "Hi {name}" and campaign.sources[0].region == "GB"
    kwargs = hub_kwargs(campaign, embedded=False)
    assert {k: kwargs[k] for k in ("from_", "max_calls_per_minute", "max_calls_per_second",
                                   "max_concurrent", "retry_attempts", "default_region",
                                   "campaign")} == {
        "from_": "+14155550000", "max_calls_per_minute": 12, "max_calls_per_second": 1,
        "max_concurrent": 3, "retry_attempts": 2, "default_region": "GB", "campaign": "spring"}
    policy = kwargs["retry_policy"]
    assert dict(policy.delays_s) == {reason: 30.0 for reason in DEFAULT_DELAYS_S}
    default = config_from_run_args(build_parser().parse_args(["run", "leads.csv"]))
    assert default.campaigns[0].name == "leads"
    assert hub_kwargs(default.campaigns[0])["retry_policy"] is None


def test_per_reason_retry_delays() -> None:
    config = parse_config(base(retry={"retries": 1, "delays_s": {"busy": 5}}), environ={})
    policy = hub_kwargs(config.campaigns[0])["retry_policy"]
    assert policy.delays_s[Reason.BUSY] == 5 and policy.delays_s[Reason.NO_ANSWER] == 600
    assert errors(base(retry={"delays_s": {"bored": 5}}))[0].startswith(
        "campaigns[0].retry.delays_s: unknown retry reason 'bored'")


WEEKDAYS = ScheduleWindow(start="0 9 * * mon-fri", end="0 17 * * mon-fri",
                          timezone="Europe/Madrid")


@pytest.mark.parametrize(("at", "open_", "edge"), [
    ("2026-12-01T07:59:59+00:00", False, "2026-12-01T09:00:00+01:00"),  # Tue, before
    ("2026-12-01T08:00:00+00:00", True, "2026-12-01T17:00:00+01:00"),   # 09:00 Madrid
    ("2026-12-01T15:59:59+00:00", True, "2026-12-01T17:00:00+01:00"),
    ("2026-12-01T16:00:00+00:00", False, "2026-12-02T09:00:00+01:00"),  # 17:00: closed
    ("2026-12-05T10:00:00+00:00", False, "2026-12-07T09:00:00+01:00"),  # Saturday
    ("2026-07-01T07:30:00+00:00", True, "2026-07-01T17:00:00+02:00"),   # summer time
])
def test_schedule_window_state_and_next_edge(at: str, open_: bool, edge: str) -> None:
    state = window_state([WEEKDAYS], dt.datetime.fromisoformat(at))
    assert state.open is open_
    assert state.next_edge == dt.datetime.fromisoformat(edge)


def test_no_window_is_always_open_and_any_window_opens() -> None:
    now = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)  # Saturday noon UTC
    assert window_state([], now).open and window_state([], now).next_edge is None
    weekend = ScheduleWindow(start="0 10 * * sat,sun", end="0 14 * * sat,sun")
    assert window_state([WEEKDAYS, weekend], now).open


def test_bad_windows_name_the_field() -> None:
    found = errors(base(schedule=[{"start": "0 9 * *", "end": "0 17 * * mon-fri",
                                   "timezone": "Mars/Olympus"}]))
    assert found[0].startswith("campaigns[0].schedule[0].start: not a cron expression")
    assert found[1] == ("campaigns[0].schedule[0].timezone: unknown time zone (expected an "
                        "IANA name such as Europe/Madrid) (got 'Mars/Olympus')")


def test_notifier_sends_datagrams_to_a_path_and_an_abstract_socket(tmp_path: Path) -> None:
    name = f"@t-{uuid.uuid4().hex}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract.bind("\0" + name[1:])
    path = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path.bind(str(tmp_path / "n.sock"))
    try:
        for sock, address in ((abstract, name), (path, str(tmp_path / "n.sock"))):
            notifier = SystemdNotifier({"NOTIFY_SOCKET": address})
            assert notifier.ready("1 campaign")
            sock.settimeout(5)
            assert sock.recv(4096) == b"READY=1\nSTATUS=1 campaign"
        assert not SystemdNotifier({}).notify("READY=1")  # no systemd: a no-op
    finally:
        abstract.close()
        path.close()


def test_watchdog_interval_is_half_and_only_for_our_pid() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "4000000"}) == 2.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({}) is None


def test_the_watchdog_holds_its_ping_for_a_loop_that_stopped_turning() -> None:
    from dispatch.daemon.support import stalled

    assert stalled({}, {"a": 0, "b": 5}) == []             # first check: nothing to compare
    assert stalled({"a": 0, "b": 5}, {"a": 0, "b": 9}) == []  # a still resuming, b turning
    assert stalled({"a": 3, "b": 9}, {"a": 3, "b": 12}) == ["a"]  # a wedged: no ping


def test_a_control_plane_off_loopback_needs_a_token_file() -> None:
    assert errors({**base(), "control": {"bind": "0.0.0.0:8765"}}) == [
        "control: bind '0.0.0.0:8765' is reachable from other hosts: set control.token_file "
        "(a bearer token is required off loopback)"]
    for bind in ("127.0.0.1:1", "[::1]:8765", "localhost:80"):
        assert parse_config({**base(), "control": {"bind": bind}}, environ={}).control.bind
    assert parse_config({**base(), "control": {"bind": "0.0.0.0:1", "token_file": "t"}},
                        environ={}).control.host == "0.0.0.0"


def test_an_sql_source_takes_its_password_from_the_environment_only() -> None:
    good = base(sources=[{"kind": "sql", "url_env": "LEADS_DB", "table": "leads",
                          "cursor_column": "updated_at"}])
    source = parse_config(good, environ={}).campaigns[0].sources[0]
    assert source.kind == "sql" and source.identity() == "sql:env:LEADS_DB#leads"
    with pytest.raises(ValueError, match="LEADS_DB"):
        source.resolved_url()  # type: ignore[union-attr]

    found = errors(base(sources=[{"kind": "sql", "url": "postgresql://u:hunter2@db/x",
                                  "table": "leads"}]))
    assert any(line.startswith("campaigns[0].sources[0]: url holds a password") for line in found)
    assert not any("hunter2" in line for line in found)
    assert any("exactly one of table and query" in line
               for line in errors(base(sources=[{"kind": "sql", "url": "sqlite:///x.db"}])))


def test_webhook_sources_and_result_webhooks_build_real_objects(tmp_path: Path) -> None:
    import base64

    from dispatch.config.build import build_strategies, result_webhooks
    from dispatch.strategies import WebhookStrategy

    secret = tmp_path / "intake.secret"
    secret.write_text("whsec_" + base64.b64encode(b"k" * 24).decode() + "\n", encoding="utf-8")
    campaign = parse_config(base(
        sources=[{"kind": "webhook", "port": 8099, "secret_file": str(secret)}],
        webhooks=[{"url": "https://crm.example/hooks", "secret_file": str(secret)}],
    ), environ={}).campaigns[0]
    (intake,) = build_strategies(campaign)
    assert isinstance(intake, WebhookStrategy)
    outbox = result_webhooks(list(campaign.webhooks))
    assert outbox is not None and "kkkk" not in repr(outbox)

    assert any("exactly one of secret_file and token_file" in line
               for line in errors(base(sources=[{"kind": "webhook", "port": 8099}])))
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no secret"):
        result_webhooks(list(parse_config(base(webhooks=[
            {"url": "https://crm.example/hooks", "secret_file": str(empty)}]),
            environ={}).campaigns[0].webhooks))


def test_calling_hours_and_dnc_of_a_campaign_become_its_admission_step(tmp_path: Path) -> None:
    from dispatch.config.build import compliance
    from dispatch.hub.admission import Compliance

    dnc = tmp_path / "dnc.txt"
    dnc.write_text("+14155550123\n", encoding="utf-8")
    campaign = parse_config(base(
        calling_hours={"default": "09:00-17:00", "sun": [], "fallback_zone": "Europe/Madrid",
                       "phone_cap": 2},
        dnc=[str(dnc)]), environ={}).campaigns[0]
    real = compliance(campaign, embedded=False)
    assert isinstance(real, Compliance) and real.sandbox_time_s is None
    assert real.settings.campaign == "rem" and real.settings.phone_cap == 2
    assert real.settings.fallback_zone == "Europe/Madrid"
    assert [str(p) for p in real.dnc_files] == [str(dnc)]
    sandbox = compliance(campaign, embedded=True)
    assert sandbox is not None and sandbox.sandbox_time_s is not None  # simulated clock

    default = parse_config(base(), environ={}).campaigns[0]
    assert hub_kwargs(default)["compliance"].settings.phone_cap == 3  # on by default
    off = parse_config(base(calling_hours={"enabled": False}), environ={}).campaigns[0]
    assert hub_kwargs(off)["compliance"] is None
