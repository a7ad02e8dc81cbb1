"""The worker-side effects benchmark applies every claimed effect for real."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench import effects_worker


def test_setup_claims_one_effect_per_user_and_run_applies_each_to_the_ledger(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "w"
    assert effects_worker.main(["setup", str(folder), "--effects", "5"]) == 0
    assert effects_worker.main(["run", str(folder)]) == 0
    with sqlite3.connect(folder / "effects.sqlite3") as conn:
        states = conn.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
        accounts = conn.execute("SELECT count(*) FROM print_accounts").fetchone()
    assert states == [("done", 5)]
    assert accounts == (5,)
    # A second run finds nothing pending: every effect is skipped, nothing changes.
    effects_worker.run(folder)
    with sqlite3.connect(folder / "effects.sqlite3") as conn:
        again = conn.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
    assert again == [("done", 5)]


def test_once_applies_every_effect_on_a_fresh_database() -> None:
    count, per_second, cpu_us = effects_worker.once(3, None)
    assert count == 3
    assert per_second > 0
    assert cpu_us > 0
