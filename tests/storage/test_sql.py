"""Compiled statements: positional arguments, statements chained into one, rows read back."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from storage.sql import Statement, chained, compile_text, row_reader


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


@dataclass(frozen=True)
class _Pair:
    name: str
    size: int
    id: int = 0


def test_a_row_reader_names_each_value_by_its_column_and_converts_the_ones_asked() -> None:
    read = row_reader(_Pair, ["id", "name", "size"], size=int)
    assert read((7, "a", "12")) == _Pair(name="a", size=12, id=7)
    with pytest.raises(ValueError):
        read((7, "a"))
    with pytest.raises(ValueError, match="not among the columns: weight"):
        row_reader(_Pair, ["id", "name", "size"], weight=int)
