"""``kiro2api keys``: manage the named client keys in ``KIRO_STATE``, beside a running server.

The command opens the same state store the server uses (the settings, ``.env`` included, say
which), so a key added here opens a running server within a second (``KeyRing``). A new key is
printed once, alone on the last line of standard output; the store keeps only its digest.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Callable

from adapters.runtime.settings import SettingsError, load_settings
from adapters.runtime.stores import StateStore, StoreConfigurationError, open_store
from kiro_protocol import (
    ClientKey,
    KeyLimits,
    LocalProtocolError,
    format_time,
    make_client_key,
    parse_expiry,
    parse_models,
    quota_periods,
)

__all__ = ["add_keys_arguments", "run_keys"]

_RANDOM_BYTES = 32


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no limit) or more, got {value}")
    return value


def add_keys_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", help="read settings (KIRO_STATE) from this file instead of ./.env")
    parser.add_argument("--state", help="the state store URL (overrides KIRO_STATE)")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="make a new key (printed once, alone on the last line)")
    add.add_argument("name", help="1-64 letters, digits, '.', '_' or '-'")
    add.add_argument("--rpm", type=_count, default=0, help="model requests per rolling minute (0: no limit)")
    add.add_argument("--concurrency", type=_count, default=0, help="model requests at once (0: no limit)")
    add.add_argument("--tokens-per-day", type=_count, default=0, help="input+output tokens per UTC day (0: no limit)")
    add.add_argument("--tokens-per-month", type=_count, default=0, help="input+output tokens per UTC month (0: no limit)")
    add.add_argument("--models", default="", help="comma-separated model ids it may use; a trailing * matches a prefix")
    add.add_argument("--expires", help="a date (2026-01-31: 00:00 UTC), a UTC time (2026-01-31T18:00:00Z) or a duration (30d, 12h)")
    listing = sub.add_parser("list", help="the keys, their limits and today's and this month's tokens")
    listing.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    for action, what in (("disable", "refuse a key (401) until enabled again"), ("enable", "accept a disabled key again"),
                         ("remove", "delete a key and its counters")):
        sub.add_parser(action, help=what).add_argument("name")


def run_keys(
    args: argparse.Namespace,
    *,
    out: Callable[[str], None] = print,
    clock: Callable[[], float] = time.time,
    random_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> int:
    """Run one ``kiro2api keys`` action; the exit status (2: bad settings or arguments, 1: no
    such key or a taken name)."""
    try:
        url = args.state or load_settings(environ=os.environ, env_file=args.env_file).state_url
        store = open_store(url)
    except (SettingsError, StoreConfigurationError) as exc:
        print(f"kiro2api keys: {exc}", file=sys.stderr)
        return 2
    try:
        return _act(args, store, out=out, clock=clock, random_bytes=random_bytes)
    except LocalProtocolError as exc:
        print(f"kiro2api keys: {exc.message}", file=sys.stderr)
        return 2
    finally:
        store.close()


def _act(
    args: argparse.Namespace, store: StateStore, *, out: Callable[[str], None], clock: Callable[[], float],
    random_bytes: Callable[[int], bytes],
) -> int:
    action = args.keys_command
    if action == "add":
        now = clock()
        limits = KeyLimits(
            rpm=args.rpm,
            concurrency=args.concurrency,
            tokens_per_day=args.tokens_per_day,
            tokens_per_month=args.tokens_per_month,
            models=parse_models(args.models),
        )
        expires_at = parse_expiry(args.expires, now) if args.expires else None
        record, secret = make_client_key(
            args.name, random_bytes=random_bytes(_RANDOM_BYTES), now=now, limits=limits, expires_at=expires_at
        )
        if not store.add_key(record):
            print(f"kiro2api keys: a key named {args.name!r} exists already", file=sys.stderr)
            return 1
        out(f"Added key {record.name!r}: {_describe(record)}.")
        out("The key is shown only now; store it where its client reads it:")
        out(secret)
        return 0
    if action == "list":
        return _list(store, out=out, now=clock(), as_json=args.json)
    if action in ("disable", "enable"):
        found = store.set_key_disabled(args.name, action == "disable")
    else:
        found = store.remove_key(args.name)
    if not found:
        print(f"kiro2api keys: no key named {args.name!r}", file=sys.stderr)
        return 1
    out(f"{action.capitalize()}d key {args.name!r}.")
    return 0


def _describe(record: ClientKey) -> str:
    limits = record.limits
    parts = [
        f"{limits.rpm} requests/min" if limits.rpm else "",
        f"{limits.concurrency} at once" if limits.concurrency else "",
        f"{limits.tokens_per_day} tokens/day" if limits.tokens_per_day else "",
        f"{limits.tokens_per_month} tokens/month" if limits.tokens_per_month else "",
        f"models {', '.join(limits.models)}" if limits.models else "",
        f"expires {format_time(record.expires_at)}" if record.expires_at is not None else "",
    ]
    return "; ".join(p for p in parts if p) or "no limits"


def _state(record: ClientKey, now: float) -> str:
    if record.disabled:
        return "disabled"
    return "expired" if record.expired(now) else "active"


def _list(store: StateStore, *, out: Callable[[str], None], now: float, as_json: bool) -> int:
    periods = quota_periods(now)
    rows = []
    for record in store.list_keys():
        today, month = store.key_tokens(record.name, day=periods.day, month=periods.month)
        rows.append((record, today, month))
    if as_json:
        out(json.dumps([
            {
                "name": r.name, "state": _state(r, now), "hint": r.hint, "limits": r.limits.to_dict(),
                "created_at": format_time(r.created_at),
                "expires_at": None if r.expires_at is None else format_time(r.expires_at),
                "tokens_today": today, "tokens_this_month": month,
            }
            for r, today, month in rows
        ], indent=2))
        return 0
    if not rows:
        out("No client keys (KIRO_CLIENT_TOKEN is the only key). Add one with: kiro2api keys add NAME")
        return 0
    table = [("NAME", "STATE", "KEY", "LIMITS", "TOKENS TODAY/MONTH", "CREATED")]
    for r, today, month in rows:
        table.append((r.name, _state(r, now), r.hint + "…", _describe(r), f"{today}/{month}", format_time(r.created_at)))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        out("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0
