"""The scale command's plan per size and its tables, without running a server."""

from __future__ import annotations

from bench.loadgen import PhaseResult
from bench.scale import PHASES, ScaleConfig, SizeReport, plan_for, render


def _phase(name: str, p50: float, p99: float, rps: float) -> PhaseResult:
    return PhaseResult(
        name=name,
        requests=1000,
        ok=1000,
        errors={},
        elapsed_s=1000 / rps,
        rps=rps,
        p50_ms=p50,
        p99_ms=p99,
        max_ms=p99 * 2,
        server_cpu_s=0.5,
        other_cpu_s=0.01,
    )


def _report(users: int, p99: float, pages_rps: float, big_p99: float) -> SizeReport:
    phases = [
        _phase("filter", 1.0, p99, 5000),
        _phase("get", 1.0, p99, 5000),
        _phase("pages", 5.0, 20.0, pages_rps),
        _phase("deep-pages", 5.0, 20.0, pages_rps / 2),
        _phase("member-add-empty", 10.0, 40.0, 500),
        _phase("member-add-big", 12.0, big_p99, 400),
    ]
    return SizeReport(
        database="sqlite",
        users=users,
        group_members=min(users - 1000, 100_000),
        seed_seconds=3.0,
        phases=phases,
        rss_idle_bytes=100 * 2**20,
        rss_after_bytes=120 * 2**20,
        peak_rss_bytes=130 * 2**20,
    )


def test_plan_keeps_outsiders_out_of_the_big_group() -> None:
    config = ScaleConfig(sizes=[], databases=["sqlite"])
    assert plan_for(1_000_000, config).members == 100_000
    assert plan_for(100_000, config).members == 99_000
    small = plan_for(50, config)
    assert small.members == 45
    assert small.outsiders == 5
    assert small.sample == 50


def test_render_states_each_target_against_the_smallest_size() -> None:
    config = ScaleConfig(sizes=[10_000, 100_000], databases=["sqlite"])
    reports = [
        _report(10_000, p99=10.0, pages_rps=1000, big_p99=40.0),
        _report(100_000, p99=20.0, pages_rps=100, big_p99=100.0),
        SizeReport(database="sqlite", users=1_000_000, error="seed failed: disk full"),
    ]
    text = render(reports, config)
    for name in PHASES:
        assert f"| {name} " in text
    small, big = (
        next(
            line
            for line in text.splitlines()
            if line.startswith(f"| sqlite | {size} ") and "x" in line
        )
        for size in ("10,000", "100,000")
    )
    assert small.count("1.00x (met)") == 3  # filter, GET, member add
    assert "1,000 (met), 2,000 per core" in small
    assert "1.00x (met), CPU 1.00x" in small
    assert big.count("2.00x (not met)") == 2
    assert "100 (not met)" in big
    assert "2.50x (not met), p50 1.20x" in big
    assert "120.0 (not met)" in big  # over the 110 MiB limit
    assert "- sqlite 1,000,000: not measured: seed failed: disk full" in text
