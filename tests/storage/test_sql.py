"""Compiled statements: positional arguments, and statements chained into one."""

from __future__ import annotations

from storage.sql import Statement, chained, compile_text


def test_arguments_follow_the_placeholders_in_order() -> None:
    assert compile_text("SELECT :b, :a, :b", "sqlite").args({"a": 1, "b": 2, "c": 3}) == (2, 1, 2)
    assert compile_text("SELECT :b, :a, :b", "postgresql").args({"a": 1, "b": 2}) == (2, 1)
    assert compile_text("SELECT :only", "sqlite").args({"only": 7}) == (7,)
    assert compile_text("SELECT 1", "sqlite").args({"x": 1}) == ()
    with_constant = Statement("SELECT ?, ?", ("a", "k"), {"k": "constant"})
    assert with_constant.args({"a": 1}) == (1, "constant")


def test_chained_statements_run_as_ctes_with_renumbered_placeholders() -> None:
    first = compile_text("INSERT INTO a (x, t) VALUES (:x, :t)", "postgresql")
    last = compile_text("DELETE FROM b WHERE y = :y AND t = :t RETURNING y", "postgresql")
    one = chained([first, last])
    assert one.sql == (
        "WITH step_0 AS (INSERT INTO a (x, t) VALUES ($1, $2))"
        " DELETE FROM b WHERE y = $3 AND t = $4 RETURNING y"
    )
    assert one.args({"x": 1, "t": "now", "y": 2}) == (1, "now", 2, "now")
