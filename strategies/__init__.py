"""Lead sources for the dispatch hub (``strategies`` is a sibling package of ``dispatch``)."""

from dispatch.strategies.csv import CsvStatistics, CsvStrategy
from dispatch.strategies.sql import SqlStatistics, SqlStrategy
from dispatch.strategies.webhook import WebhookStrategy

__all__ = ["CsvStatistics", "CsvStrategy", "SqlStatistics", "SqlStrategy", "WebhookStrategy"]
