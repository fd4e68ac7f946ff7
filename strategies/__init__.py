"""Lead sources for the dispatch hub (``strategies`` is a sibling package of ``dispatch``)."""

from dispatch.strategies.csv import CsvStatistics, CsvStrategy

__all__ = ["CsvStatistics", "CsvStrategy"]
