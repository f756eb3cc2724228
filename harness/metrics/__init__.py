"""Per-request records -> per-level summary. Every metric is defined here, once.

`definitions` names each metric (tables, figure labels and the README read METRICS),
`request` derives one request's figures, `level` summarises a level from its records.
"""

from harness.metrics.definitions import METRICS, MIN_SAMPLES, STATISTICS, Metric, metrics_markdown
from harness.metrics.level import (
    CLIENT_RECORD_FLAGS,
    DISTRIBUTION_METRICS,
    FROM_DUE_METRICS,
    meets_targets,
    per_request_values,
    steady_window,
    summarize_level,
)
from harness.metrics.request import describe, itl_gaps_ms, tpot_ms

__all__ = [
    "CLIENT_RECORD_FLAGS",
    "DISTRIBUTION_METRICS",
    "FROM_DUE_METRICS",
    "METRICS",
    "MIN_SAMPLES",
    "STATISTICS",
    "Metric",
    "describe",
    "itl_gaps_ms",
    "meets_targets",
    "metrics_markdown",
    "per_request_values",
    "steady_window",
    "summarize_level",
    "tpot_ms",
]
