"""EventStream decoding throughput: kiro_protocol's decoder against botocore's EventStreamBuffer.

Run: ``.venv/bin/python bench/bench_eventstream.py [--quick]``. Both decoders get the same
chunks in the same process; each workload is timed several times and the best run is kept.
Workloads:

(a) a realistic Kiro turn: a few thousand small ``assistantResponseEvent`` frames (1-3 CJK
    characters or a few words each), a tool call, metering and context usage, delivered in reads
    of 1-16 KiB;
(b) a few large payloads (4 MiB each) delivered in 64 KiB reads.

Target (issue 2): at least 3x botocore on (a), no worse on (b). This script reports; it does not
assert.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from botocore.eventstream import EventStreamBuffer

from kiro_protocol.wire._eventstream import EventStreamDecoder, encode_message
from kiro_protocol.responses._upstream_events import AssistantResponse, ContextUsage, Metering, ToolUse
from kiro_protocol.responses._upstream_parse import encode_upstream_event
from kiro_protocol._util import NEED_DATA

_WORDS = ["the ", "weather ", "card ", "will ", "show ", "a ", "forecast", ", ", "and ", "`code`", "\n", "我", "将为", "您创建"]


def kiro_turn(frames: int, rng: random.Random) -> bytes:
    """A text-heavy turn like the captures: small fragments, then a tool call and accounting."""
    parts = [
        encode_upstream_event(AssistantResponse(content="".join(rng.choices(_WORDS, k=rng.randint(1, 3)))))
        for _ in range(frames)
    ]
    tool_id = "tooluse_1DCqyICMR-CfTS36UNNiwA"
    parts.append(encode_upstream_event(ToolUse(tool_use_id=tool_id, name="Write", input="", stop=False)))
    for fragment in ['{"path":', '"index.html",', '"content":"<html>…</html>"}']:
        parts.append(encode_upstream_event(ToolUse(tool_use_id=tool_id, name="Write", input=fragment, stop=False)))
    parts.append(encode_upstream_event(ToolUse(tool_use_id=tool_id, name="Write", input="", stop=True)))
    parts.append(encode_upstream_event(Metering(unit="credit", usage=0.0571)))
    parts.append(encode_upstream_event(ContextUsage(percentage=12.5)))
    return b"".join(parts)


def large_payloads(count: int, size: int) -> bytes:
    headers = {":event-type": "assistantResponseEvent", ":content-type": "application/json", ":message-type": "event"}
    return b"".join(encode_message(headers, bytes([i % 251]) * size) for i in range(count))


def chunk(data: bytes, sizes: Callable[[], int]) -> list[bytes]:
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        n = sizes()
        out.append(data[pos : pos + n])
        pos += n
    return out


def run_ours(chunks: Sequence[bytes]) -> int:
    decoder = EventStreamDecoder()
    count = 0
    for c in chunks:
        decoder.receive_data(c)
        while decoder.next_event() is not NEED_DATA:
            count += 1
    return count


def run_botocore(chunks: Sequence[bytes]) -> int:
    buffer = EventStreamBuffer()
    count = 0
    for c in chunks:
        buffer.add_data(c)
        for _message in buffer:
            count += 1
    return count


def best_of(fn: Callable[[Sequence[bytes]], int], chunks: Sequence[bytes], repeat: int) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = fn(chunks)
        best = min(best, time.perf_counter() - start)
    return best, count


def report(name: str, chunks: Sequence[bytes], repeat: int) -> float:
    total = sum(len(c) for c in chunks)
    ours_t, ours_n = best_of(run_ours, chunks, repeat)
    boto_t, boto_n = best_of(run_botocore, chunks, repeat)
    if ours_n != boto_n:
        print(f"  !! message counts differ: ours {ours_n}, botocore {boto_n}")
    print(f"{name}: {ours_n} messages, {total / 1e6:.2f} MB in {len(chunks)} reads")
    for label, t, n in (("kiro_protocol", ours_t, ours_n), ("botocore", boto_t, boto_n)):
        print(f"  {label:<14} {t * 1e3:9.2f} ms  {n / t:12,.0f} msg/s  {total / t / 1e6:9.1f} MB/s")
    ratio = boto_t / ours_t
    print(f"  ratio (botocore time / ours): {ratio:.2f}x")
    return ratio


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller workloads, fewer repeats")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 7
    rng = random.Random(20251125)

    turn = kiro_turn(1000 if args.quick else 4000, rng)
    small_reads = chunk(turn, lambda: rng.randint(1024, 16 * 1024))
    ratio_a = report("(a) Kiro turn, small frames in 1-16 KiB reads", small_reads, repeat)

    big = large_payloads(2 if args.quick else 4, 4 * 1024 * 1024)
    big_reads = chunk(big, lambda: 64 * 1024)
    ratio_b = report("(b) large payloads (4 MiB) in 64 KiB reads", big_reads, max(2, repeat // 2))

    print()
    print(f"summary: (a) {ratio_a:.2f}x botocore (target >= 3x), (b) {ratio_b:.2f}x botocore (target >= 1x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
