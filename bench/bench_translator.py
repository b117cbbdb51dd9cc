"""CPU of the core's response translator alone: one precomputed Kiro answer in, Anthropic SSE out.

The same 50-frame answer ``bench/precomputed_upstream.py`` serves, fed to a ``ResponseTranslator``
in one piece (as one network read brings it), then the end. Process time, the minimum of several
repeats: the figure that holds still on a shared machine.

    .venv/bin/python bench/bench_translator.py [--frames 50] [--per-read N] [--profile]

``--per-read N`` feeds N frames per ``receive_data`` instead (1: as a paced real stream arrives,
a frame or a few per network read), taking the output after each.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.precomputed_upstream import answer_frames
from kiro_protocol.requests import ResponsePlan
from kiro_protocol.responses import ResponseTranslator


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--number", type=int, default=300, help="answers per repeat (default 300)")
    parser.add_argument("--per-read", type=int, default=0, metavar="N",
                        help="frames per receive_data (default: the whole answer in one)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions too")
    args = parser.parse_args(argv)
    frames = answer_frames(args.frames)
    step = args.per_read or len(frames)
    reads = [b"".join(frames[i:i + step]) for i in range(0, len(frames), step)]
    plan = ResponsePlan(client_model="claude-sonnet-4-5", kiro_model_id="CLAUDE_SONNET_4_5_20250929_V1_0",
                        stream=True, estimated_input_tokens=10)

    def run() -> bytes:
        translator = ResponseTranslator(plan, message_id="msg_0123456789abcdefghijklmn", now=0.0, keep_events=False)
        out = [translator.data_to_send()]
        for data in reads:
            translator.receive_data(data, 1.0)
            out.append(translator.data_to_send())
        translator.receive_data(b"", 1.0)
        out.append(translator.data_to_send())
        return b"".join(out)

    out = run()
    assert out.endswith(b'{"type":"message_stop"}\n\n'), out[-200:]
    best = min(timeit.Timer(run, timer=time.process_time).repeat(repeat=15, number=args.number)) / args.number
    how = "in one piece" if len(reads) == 1 else f"in {len(reads)} reads"
    print(f"translator, {args.frames} frames {how} -> {len(out)} bytes of SSE: {best * 1e3:.3f} ms CPU")
    if args.profile:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.runcall(lambda: [run() for _ in range(args.number)])
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
