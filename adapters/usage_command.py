"""``kiro2api usage``: the usage records of ``KIRO_STATE`` summed per key, account, model or day.

It reads the same store a running server writes (SQLite or Redis), so it works while the server
runs; records reach the store about a second after their request ended. Sums come from the
core's ``summarize_usage``, the same as the admin API's.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time

from kiro_protocol import parse_since, summarize_usage, USAGE_GROUPINGS, UsageTotals

__all__ = ["add_arguments", "run", "usage_table", "usage_csv"]

_COLUMNS = ("requests", "errors", "input_tokens", "output_tokens", "credits", "mean_ttfb_ms", "mean_duration_ms")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--by",
        default="key",
        help=f"group by one or more of {', '.join(USAGE_GROUPINGS)}, comma-separated (default: key)",
    )
    parser.add_argument(
        "--since",
        help="only requests since then: a duration back (24h, 7d, 2w), today, a date (2025-06-01) or an ISO 8601 "
             "time (default: everything kept, see KIRO_USAGE_RETENTION_DAYS)",
    )
    parser.add_argument("--csv", action="store_true", help="comma-separated values with a header line, no total")
    parser.add_argument("--env-file", help="read settings (KIRO_STATE) from this file instead of ./.env")


def _cells(total: UsageTotals) -> list[str]:
    ttfb = "" if total.mean_ttfb is None else f"{total.mean_ttfb * 1000:.0f}"
    return [
        str(total.requests), str(total.errors), str(total.input_tokens), str(total.output_tokens),
        f"{total.credits:.4f}", ttfb, f"{total.mean_duration * 1000:.0f}",
    ]


def usage_csv(by: tuple[str, ...], totals: list[UsageTotals]) -> str:
    """The totals as CSV: one header line, one line per group."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*by, *_COLUMNS])
    for total in totals:
        writer.writerow([*total.group, *_cells(total)])
    return out.getvalue()


def usage_table(by: tuple[str, ...], totals: list[UsageTotals], grand: UsageTotals | None) -> str:
    """The totals as an aligned table, numbers right-aligned, with ``grand`` as a TOTAL line."""
    rows = [[*t.group, *_cells(t)] for t in totals]
    rows.append(["TOTAL", *[""] * (len(by) - 1), *_cells(grand or UsageTotals(group=()))])
    header = [*by, *_COLUMNS]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [c.ljust(w) if i < len(by) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)]) + "\n"


def run(args: argparse.Namespace) -> int:
    from adapters.runtime.settings import SettingsError, load_settings
    from adapters.runtime.stores import StoreConfigurationError, open_store

    by = tuple(part.strip() for part in str(args.by).split(",") if part.strip())
    unknown = [b for b in by if b not in USAGE_GROUPINGS]
    if not by or unknown:
        print(f"kiro2api usage: --by takes {', '.join(USAGE_GROUPINGS)} (comma-separated)", file=sys.stderr)
        return 2
    since = 0.0
    if args.since is not None:
        try:
            since = parse_since(args.since, time.time())
        except ValueError as exc:
            print(f"kiro2api usage: --since: {exc}", file=sys.stderr)
            return 2
    try:
        settings = load_settings(environ=os.environ, env_file=args.env_file)
        store = open_store(settings.state_url)
    except (SettingsError, StoreConfigurationError) as exc:
        print(f"kiro2api usage: {exc}", file=sys.stderr)
        return 2
    try:
        records = store.usage(since=since)
    except Exception as exc:
        print(f"kiro2api usage: cannot read {settings.state_url.split('://', 1)[0]} state store: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    totals = summarize_usage(records, by=by)
    if args.csv:
        sys.stdout.write(usage_csv(by, totals))
    else:
        grand = summarize_usage(records, by=())
        sys.stdout.write(usage_table(by, totals, grand[0] if grand else None))
    return 0
