"""A short run of the soak (``python -m bench.soak``): few tenants, seconds instead of minutes.

The full run (40 tenants at 25 requests per second each, for ten minutes) is a measurement made
by hand; this one checks that the soak works end to end and that, at a rate the machine sustains,
nothing fails and memory does not run away. The memory bound is deliberately loose: RSS is a
measurement, and ten seconds of it say little about a leak.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bench import soak

TENANTS = 5
RATE = 25.0
SECONDS = 10.0
#: API RSS may grow this much between the end of the warm-up and the end of the run.
RSS_GROWTH_LIMIT_MIB = 64


@pytest.mark.slow
def test_soak_short_run_reports_no_errors_and_bounded_memory(tmp_path: Path) -> None:
    output = tmp_path / "soak.json"
    status = soak.main(
        [
            "--tenants",
            str(TENANTS),
            "--rate",
            str(RATE),
            "--seconds",
            str(SECONDS),
            "--interval",
            "2",
            "--warmup",
            "2",
            "--json",
            str(output),
            "--max-errors",
            "0",
            "--max-rss-growth-mib",
            str(RSS_GROWTH_LIMIT_MIB),
        ]
    )

    report = orjson.loads(output.read_bytes())
    assert status == 0, report
    assert report["errors"] == {}
    assert report["requests"] >= 0.95 * TENANTS * RATE * SECONDS
    intervals = report["intervals"]
    assert len(intervals) >= SECONDS / 2
    assert all(item["api_rss_bytes"] > 0 for item in intervals)
    assert all(item["requests"] > 0 for item in intervals)
    assert 0 < report["p99_ms"] < 5000
    assert report["rss_growth_bytes"] < RSS_GROWTH_LIMIT_MIB * soak.MIB
