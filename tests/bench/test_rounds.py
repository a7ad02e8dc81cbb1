"""``python -m bench.run --rounds N --tree LABEL=DIR``: alternating rounds, each phase quoted by
its best round, and printsync served from another source tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.loadgen import PHASE_NAMES
from bench.run import REPO_ROOT, child_env
from tests.harness import python

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_rounds_alternate_and_each_phase_reports_its_best_round(tmp_path: Path) -> None:
    markdown, raw = tmp_path / "out.md", tmp_path / "out.json"
    target = "printsync-sqlite@here"
    command = [
        "-m", "bench.run", "--users", "20", "--duration", "0.3",
        "--rounds", "2", "--targets", f"{target},ceiling", "--tree", f"here={REPO_ROOT}",
        "--markdown", str(markdown), "--json", str(raw),
    ]  # fmt: skip
    result = python(command, cwd=REPO_ROOT, env=child_env(), timeout=220)
    assert result.returncode == 0, result.stderr[-2000:]
    order = [line for line in result.stderr.splitlines() if ": starting" in line]
    assert [line.split()[2].rstrip(":") for line in order] == [target, "ceiling"] * 2
    outcomes = {entry["target"]: entry for entry in json.loads(raw.read_text())}
    assert set(outcomes) == {target, "ceiling"}
    for entry in outcomes.values():
        rounds = entry["rounds"]
        assert len(rounds) == 2 and all(rounds)
        for phase in entry["report"]["phases"]:
            rates = [p["rps"] for r in rounds for p in r["phases"] if p["name"] == phase["name"]]
            assert phase["rps"] == max(rates)
    text = markdown.read_text()
    assert "## Rounds" in text
    rows = [line for line in text.splitlines() if line.startswith(f"| {target}")]
    assert {row.split("|")[2].strip() for row in rows} >= set(PHASE_NAMES)


def test_a_tree_without_printsync_is_refused(tmp_path: Path) -> None:
    result = python(
        ["-m", "bench.run", "--tree", f"old={tmp_path}"], cwd=REPO_ROOT, env=child_env()
    )
    assert result.returncode == 2
    assert "expected LABEL=DIR with a printsync tree in DIR" in result.stderr
