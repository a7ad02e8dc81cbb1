"""The Bulk planner (``storage.scim.bulk``) and the cursor seal (``storage.cursors``), without a
server: run order, reference failures, and what a cursor keeps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from storage import cursors
from storage.cursors import Cursor, Keys, Position
from storage.scim import bulk
from storage.scim.errors import ExpiredCursor, InvalidCursor, InvalidValue

KEYS = Keys.derive(b"k" * 32)
BOUND = cursors.binding(1, "User", 'userName sw "a"', "username ascending")


def _post(bulk_id: str, path: str = "/Users", **data: Any) -> dict[str, Any]:
    return {"method": "POST", "bulkId": bulk_id, "path": path, "data": data}


def test_operations_run_after_the_posts_they_name_and_otherwise_in_request_order() -> None:
    planned = bulk.plan(
        [
            _post("c", manager={"value": "bulkId:b"}),
            {"method": "DELETE", "path": "/Users/x"},
            _post("b", manager="bulkId:a"),
            _post("a"),
            {"method": "PATCH", "path": "/Groups/bulkId:g", "data": {"Operations": []}},
            _post("g", "/Groups", members=[{"value": "bulkId:a"}, {"value": "bulkId:c"}]),
        ]
    )
    assert [op.index for op in planned] == [1, 3, 2, 0, 5, 4]
    assert all(op.error is None for op in planned)
    assert planned[-1].resource_id == "bulkId:g"
    assert planned[-2].references == frozenset({"a", "c"})


def test_cycles_and_what_waits_on_them_fail_last() -> None:
    planned = bulk.plan(
        [
            _post("a", manager="bulkId:b"),
            _post("b", manager="bulkId:a"),
            _post("c", manager="bulkId:a"),
            _post("d"),
        ]
    )
    assert [(op.index, op.error is None) for op in planned] == [
        (3, True),
        (0, False),
        (1, False),
        (2, False),
    ]


def test_created_ids_replace_references_everywhere_in_data() -> None:
    created = bulk.Created({"u": "id-1"})
    data = {"members": [{"value": "bulkId:u"}, {"value": "bulkId:"}], "x": {"y": ["bulkId:u"]}}
    assert created.resolve(data) == {
        "members": [{"value": "id-1"}, {"value": "bulkId:"}],
        "x": {"y": ["id-1"]},
    }
    with pytest.raises(InvalidValue):
        created.resolve("bulkId:missing")


@pytest.mark.parametrize("value", ["ada", 7, 2.5, True, False, Decimal("12.50"), None])
def test_a_sealed_cursor_opens_to_the_same_position(value: Any) -> None:
    cursor = Cursor("previous", Position(1, 42, value, sorted=True), cursors_now())
    opened = cursors.open_(KEYS, BOUND, cursors.seal(KEYS, BOUND, cursor))
    assert opened == cursor
    assert type(opened.position.value) is type(value)


def test_cursors_differ_each_time_and_open_only_for_their_binding_and_key() -> None:
    cursor = Cursor("next", Position(0, 9), cursors_now())
    first, second = cursors.seal(KEYS, BOUND, cursor), cursors.seal(KEYS, BOUND, cursor)
    assert first != second  # a fresh nonce: equal positions do not show
    other = cursors.binding(2, "User", 'userName sw "a"', "username ascending")
    with pytest.raises(InvalidCursor):
        cursors.open_(KEYS, other, first)
    with pytest.raises(InvalidCursor):
        cursors.open_(Keys.derive(b"j" * 32), BOUND, first)


def test_an_old_cursor_expires_and_one_from_the_future_is_invalid() -> None:
    old = Cursor("next", Position(0, 9), cursors_now() - cursors.TIMEOUT_SECONDS - 1)
    with pytest.raises(ExpiredCursor):
        cursors.open_(KEYS, BOUND, cursors.seal(KEYS, BOUND, old))
    future = Cursor("next", Position(0, 9), cursors_now() + 3600)
    with pytest.raises(InvalidCursor):
        cursors.open_(KEYS, BOUND, cursors.seal(KEYS, BOUND, future))


def cursors_now() -> int:
    return int(cursors.time.time())
