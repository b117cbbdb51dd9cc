"""The soak benchmark runs end to end on a tiny load and prints its table (issue 18).

No figure is asserted: the benchmark reports; this checks that it works and counts right.
"""

from __future__ import annotations

import os
import re
import resource

import pytest

from bench.bench_soak import main, open_fds, raise_open_file_limit


def test_open_fds_counts_this_process() -> None:
    assert open_fds(os.getpid()) > 0
    assert open_fds(2**22 + 1) == -1  # no such process


def test_the_open_file_limit_is_raised_not_lowered() -> None:
    before = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert raise_open_file_limit() >= before


@pytest.mark.slow
def test_a_small_soak_completes_every_stream_and_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--streams", "20", "--rounds", "1", "--servers", "serve", "--frames", "3", "--pace-ms", "20"]) == 0
    out = capsys.readouterr().out
    assert "round  streams  completed  failed  peak open  peak RSS MiB" in out
    row = re.search(r"^\s+1\s+20\s+(\d+)\s+(\d+)\s+\d+\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)$", out, re.M)
    assert row is not None, out
    completed, failed, peak_rss, _, peak_fds, _ = row.groups()
    assert (completed, failed) == ("20", "0"), out
    assert float(peak_rss) > 0 and int(peak_fds) > 0
    assert "every stream completed: yes" in out
