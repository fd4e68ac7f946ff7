"""``dispatch run``'s flags as a :class:`~dispatch.config.DispatchConfig`.

``run`` is a daemon with one campaign and one CSV source: mapping its flags onto the
model keeps one source of truth for what each setting means (the hub is then built
by :func:`dispatch.config.build.build_hub`, as ``serve`` builds it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dispatch.config.model import (
    AgentConfig,
    CampaignConfig,
    CsvSource,
    DispatchConfig,
    LimitsConfig,
    RetryConfig,
    SqlSource,
    VoiceConfig,
)

__all__ = ["config_from_run_args"]


def config_from_run_args(args: argparse.Namespace) -> DispatchConfig:
    """The config ``dispatch run FILE [flags]`` stands for (``pydantic.ValidationError``
    only for values argparse let through, which its types make impossible)."""
    source: CsvSource | SqlSource
    if getattr(args, "sql", None):
        source = _sql_source(args)
        name = args.campaign or "sql"
    else:
        file = Path(args.file)
        source = CsvSource(path=file, greeting=args.greeting, region=args.region,
                           encoding=args.encoding, delimiter=args.delimiter,
                           write_back=bool(args.write_back))
        name = getattr(args, "campaign", None) or file.stem or "default"
    agent = AgentConfig(name=args.agent, caller_id=args.from_, prompt=args.prompt,
                        voice=args.voice, llm=args.llm, stt=args.stt, language=args.language)
    campaign = CampaignConfig(
        name=name,
        sources=[source], agent=agent,
        limits=LimitsConfig(max_per_minute=args.rate, max_per_second=args.cps,
                            max_concurrent=args.concurrency),
        retry=RetryConfig(retries=args.retries, delay_s=args.retry_delay),
        poll_interval_s=args.poll,
    )
    voice = VoiceConfig(url=args.url, sandbox=bool(args.sandbox), scenario=args.scenario,
                        sandbox_speed=args.sandbox_speed)
    return DispatchConfig(store=str(args.db), log_format="json" if args.json_logs else "text",
                          voice=voice, campaigns=[campaign])


def _sql_source(args: argparse.Namespace) -> SqlSource:
    """``--sql URL|env:VAR`` and the ``--sql-*`` flags (a URL with a password stays out of
    the model: the run command hands the hub the strategy it built from the flags)."""
    text: str = args.sql
    env = text[4:] if text.startswith("env:") else None
    return SqlSource.model_construct(
        url=None if env else text, url_env=env, table=args.table, query=args.sql_query,
        id_column=args.sql_id_column, phone_column=args.sql_phone_column,
        greeting=args.greeting, cursor_column=args.sql_cursor,
        cursor_overlap_s=args.sql_overlap, not_before_column=args.sql_not_before,
        timezone_column=args.sql_timezone, write_back=args.sql_writeback,
        region=args.region, page_size=args.sql_page_size)
