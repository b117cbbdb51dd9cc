"""Usage accounting: the record of one model request, its sums per key, account, model and day,
and the time rules (days, retention, ``--since``). The stores keep the records; this package
says what they mean.

This module is the public API of ``kiro_protocol.accounting``; its modules are private.
"""

from ._labels import MODEL_ENDPOINTS, endpoint_label
from ._usage_record import USAGE_FIELDS, UsageRecord, clip_label
from ._usage_totals import GROUPINGS, UsageTotals, parse_since, retention_cutoff, summarize_usage, usage_day

__all__ = [
    "MODEL_ENDPOINTS",
    "endpoint_label",
    "UsageRecord",
    "USAGE_FIELDS",
    "clip_label",
    "UsageTotals",
    "GROUPINGS",
    "summarize_usage",
    "usage_day",
    "retention_cutoff",
    "parse_since",
]
