"""The provisioning log: the API's buffer, batched writes, queries and retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from metrics import redaction
from storage import clock, outbox, provisioning_log, tenants
from storage.database import Database
from storage.errors import DatabaseUnavailable
from storage.provisioning_log import Entry, LogBuffer, LogQuery, LogSettings
from tests.conftest import count_rows
from tests.harness import run
from tests.support_a import record_effects

T = TypeVar("T")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def at(minutes_ago: float) -> str:
    return clock.stamp(NOW - timedelta(minutes=minutes_ago))


def scim(
    tenant_id: int,
    operation: str,
    result: str,
    *,
    minutes_ago: float = 0,
    target_id: str | None = None,
    target_name: str | None = None,
    status: int | None = None,
) -> Entry:
    return provisioning_log.entry(
        tenant_id,
        operation,
        result,
        source="scim",
        target_id=target_id,
        target_name=target_name,
        status=status,
        time=at(minutes_ago),
    )


def test_flush_buffered_requests_written_with_results_from_status(database_url: str) -> None:
    async def work(db: Database) -> list[Entry]:
        tenant, _ = await tenants.create(db, "acme", connector="ledger")
        buffer = LogBuffer(LogSettings())
        buffer.append(tenant.id, "POST /Users", 201, target_id="u1", target_name="Ada@Acme.com")
        buffer.append(
            tenant.id,
            "POST /Users",
            409,
            target_name="ada@acme.com",
            error="userName is already taken",
        )
        buffer.append(tenant.id, "GET /Users", 500, error="internal server error")
        assert len(buffer) == 3
        assert await buffer.flush(db) == 3
        assert len(buffer) == 0
        return await provisioning_log.search(db, LogQuery(tenant_id=tenant.id))

    entries = run(database_url, work)
    assert [(e.operation, e.result, e.status) for e in entries] == [
        ("GET /Users", "server_error", 500),
        ("POST /Users", "client_error", 409),
        ("POST /Users", "success", 201),
    ]
    assert all(e.source == "scim" for e in entries)
    assert entries[1].error == "userName is already taken"
    assert entries[2].target_name == "Ada@Acme.com"


def test_flush_more_than_a_batch_writes_one_batch_per_call(database_url: str) -> None:
    async def work(db: Database) -> tuple[int, int, int, int]:
        tenant, _ = await tenants.create(db, "acme", connector="ledger")
        buffer = LogBuffer(LogSettings(flush_rows=75))
        for number in range(160):
            buffer.append(tenant.id, "PATCH /Users", 200, target_id=f"u{number}")
        first = await buffer.flush(db)  # 75 rows: chunks of 64, 8, 1, 1, 1
        waiting = len(buffer)
        rest = await buffer.drain(db)
        found = await provisioning_log.search(db, LogQuery(tenant_id=tenant.id, limit=500))
        return first, waiting, rest, len({e.target_id for e in found})

    assert run(database_url, work) == (75, 85, 85, 160)


def test_append_when_buffer_full_drops_oldest_and_counts_them(sqlite_url: str) -> None:
    async def work(db: Database) -> tuple[int, list[str]]:
        tenant, _ = await tenants.create(db, "acme", connector="ledger")
        buffer = LogBuffer(LogSettings(buffer_rows=5))
        for number in range(8):
            buffer.append(tenant.id, "PATCH /Users", 200, target_id=f"u{number}")
        await buffer.drain(db)
        found = await provisioning_log.search(db, LogQuery(tenant_id=tenant.id))
        return buffer.dropped, sorted(e.target_id or "" for e in found)

    dropped, kept = run(sqlite_url, work)
    assert dropped == 3
    assert kept == ["u3", "u4", "u5", "u6", "u7"]


class FlakyDatabase:
    """A database whose next ``failures`` write transactions fail as if it were unreachable."""

    def __init__(self, db: Database, failures: int) -> None:
        self.db = db
        self.dialect = db.dialect
        self.listeners = db.listeners
        self.failures = failures

    def effects_committed(self) -> None:
        self.db.effects_committed()

    def transaction(self) -> Any:
        if self.failures:
            self.failures -= 1
            raise DatabaseUnavailable("database is locked")
        return self.db.transaction()

    def reader(self) -> Any:
        return self.db.reader()

    async def close(self) -> None:
        await self.db.close()


def test_flush_when_database_fails_keeps_batch_and_writes_it_later(sqlite_url: str) -> None:
    async def work(db: Database) -> tuple[int, int, int]:
        tenant, _ = await tenants.create(db, "acme", connector="ledger")
        flaky = FlakyDatabase(db, failures=2)
        buffer = LogBuffer(LogSettings(flush_rows=2))
        for number in range(3):
            buffer.append(tenant.id, "DELETE /Users", 204, target_id=f"u{number}")
        for _ in range(2):
            with pytest.raises(DatabaseUnavailable):
                await buffer.flush(flaky)
        assert len(buffer) == 3
        written = await buffer.drain(flaky)
        return written, buffer.dropped, count_rows(sqlite_url, "provisioning_log")

    assert run(sqlite_url, work) == (3, 0, 3)


def test_flush_when_batch_fails_three_times_drops_it(sqlite_url: str) -> None:
    async def work(db: Database) -> tuple[int, int]:
        tenant, _ = await tenants.create(db, "acme", connector="ledger")
        flaky = FlakyDatabase(db, failures=3)
        buffer = LogBuffer(LogSettings(flush_rows=2))
        for number in range(3):
            buffer.append(tenant.id, "DELETE /Users", 204, target_id=f"u{number}")
        for _ in range(3):
            with pytest.raises(DatabaseUnavailable):
                await buffer.flush(flaky)
        await buffer.drain(flaky)
        return buffer.dropped, buffer.written

    assert run(sqlite_url, work) == (2, 1)


def test_run_task_flushes_within_interval_and_close_drains(database_url: str) -> None:
    async def work(db: Database) -> tuple[int, int]:
        tenant, _ = await tenants.create(db, "acme", connector="ledger")
        buffer = LogBuffer(LogSettings(flush_interval_seconds=0.05))
        buffer.start(db)
        buffer.append(tenant.id, "POST /Groups", 201, target_id="g1", target_name="Staff")
        for _ in range(100):
            await asyncio.sleep(0.02)
            if buffer.written:
                break
        seen_by_task = buffer.written
        buffer.append(tenant.id, "DELETE /Groups", 204, target_id="g1")
        await buffer.close(db)
        return seen_by_task, len(await provisioning_log.search(db, LogQuery(target="g1")))

    assert run(database_url, work) == (1, 2)


def test_run_task_full_batch_wakes_flush_before_interval(sqlite_url: str) -> None:
    async def work(db: Database) -> int:
        tenant, _ = await tenants.create(db, "acme", connector="ledger")
        buffer = LogBuffer(LogSettings(flush_interval_seconds=30, flush_rows=10))
        buffer.start(db)
        await asyncio.sleep(0)
        for number in range(10):
            buffer.append(tenant.id, "PATCH /Users", 200, target_id=f"u{number}")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if buffer.written:
                break
        written = buffer.written
        await buffer.close(db)
        return written

    assert run(sqlite_url, work) == 10


def test_search_user_by_name_finds_its_whole_life_across_sources(database_url: str) -> None:
    async def work(db: Database) -> tuple[list[Entry], list[Entry], list[Entry]]:
        acme, _ = await tenants.create(db, "acme", connector="ledger")
        other, _ = await tenants.create(db, "other", connector="ledger")
        await provisioning_log.write(
            db,
            [
                scim(
                    acme.id,
                    "POST /Users",
                    "success",
                    minutes_ago=50,
                    target_id="u-1",
                    target_name="Ada@Acme.com",
                    status=201,
                ),
                provisioning_log.entry(
                    acme.id,
                    "account.sync",
                    "success",
                    target_id="u-1",
                    target_name="ada@acme.com",
                    time=at(49),
                ),
                scim(
                    acme.id, "PATCH /Users", "success", minutes_ago=40, target_id="u-1", status=200
                ),
                scim(
                    acme.id, "PATCH /Users", "success", minutes_ago=30, target_id="u-1", status=200
                ),
                provisioning_log.entry(
                    acme.id,
                    "account.sync",
                    "retried",
                    target_id="u-1",
                    error="PaperCut unreachable",
                    time=at(29),
                ),
                scim(
                    acme.id, "DELETE /Users", "success", minutes_ago=20, target_id="u-1", status=204
                ),
                provisioning_log.entry(
                    acme.id,
                    "account.delete",
                    "success",
                    target_id="u-1",
                    target_name="ada@acme.com",
                    time=at(19),
                ),
                # Someone else in the same tenant, and the same name in another tenant.
                scim(
                    acme.id,
                    "POST /Users",
                    "success",
                    minutes_ago=45,
                    target_id="u-2",
                    target_name="bob@acme.com",
                    status=201,
                ),
                scim(
                    other.id,
                    "POST /Users",
                    "success",
                    minutes_ago=45,
                    target_id="u-9",
                    target_name="ada@acme.com",
                    status=201,
                ),
            ],
        )
        by_name = await provisioning_log.search(
            db, LogQuery(tenant_id=acme.id, target="ADA@acme.com")
        )
        by_id = await provisioning_log.search(db, LogQuery(tenant_id=acme.id, target="u-1"))
        everywhere = await provisioning_log.search(db, LogQuery(target="ada@acme.com"))
        return by_name, by_id, everywhere

    by_name, by_id, everywhere = run(database_url, work)
    story = [(e.source, e.operation, e.result) for e in by_name]
    assert story == [
        ("effect", "account.delete", "success"),
        ("scim", "DELETE /Users", "success"),
        ("effect", "account.sync", "retried"),
        ("scim", "PATCH /Users", "success"),
        ("scim", "PATCH /Users", "success"),
        ("effect", "account.sync", "success"),
        ("scim", "POST /Users", "success"),
    ]
    assert [e.id for e in by_id] == [e.id for e in by_name]
    assert {e.target_id for e in everywhere} == {"u-1", "u-9"}


def test_search_filters_result_and_time_range_newest_first(database_url: str) -> None:
    async def work(db: Database) -> tuple[list[Entry], list[Entry], list[Entry]]:
        acme, _ = await tenants.create(db, "acme", connector="ledger")
        await provisioning_log.write(
            db,
            [
                scim(
                    acme.id,
                    "POST /Users",
                    "client_error",
                    minutes_ago=minutes,
                    status=409,
                    target_name=f"user{minutes}",
                )
                for minutes in (5, 15, 25, 35)
            ]
            + [scim(acme.id, "GET /Users", "success", minutes_ago=10, status=200)],
        )
        errors = await provisioning_log.search(
            db, LogQuery(tenant_id=acme.id, result="client_error", since=at(30), until=at(5))
        )
        limited = await provisioning_log.search(db, LogQuery(tenant_id=acme.id, limit=2))
        successes = await provisioning_log.search(db, LogQuery(result="success"))
        return errors, limited, successes

    errors, limited, successes = run(database_url, work)
    assert [e.target_name for e in errors] == ["user15", "user25"]
    assert [e.time for e in limited] == [at(5), at(10)]
    assert [e.operation for e in successes] == ["GET /Users"]


def test_query_with_bad_result_or_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="result must be one of"):
        LogQuery(result="oops")
    with pytest.raises(ValueError, match="limit"):
        LogQuery(limit=0)
    with pytest.raises(ValueError, match="result must be one of"):
        provisioning_log.entry(1, "account.sync", "fine")


def test_prune_removes_entries_past_retention(database_url: str) -> None:
    async def work(db: Database) -> tuple[int, list[str]]:
        acme, _ = await tenants.create(db, "acme", connector="ledger")
        await provisioning_log.write(
            db,
            [
                scim(
                    acme.id,
                    "GET /Users",
                    "success",
                    minutes_ago=days * 24 * 60,
                    target_name=f"d{days}",
                )
                for days in (0, 1, 13, 15, 30)
            ],
        )
        deleted = await provisioning_log.prune(
            db, retention_days=14, max_rows_per_tenant=1000, now=NOW, batch=1
        )
        kept = await provisioning_log.search(db, LogQuery(tenant_id=acme.id))
        return deleted, [e.target_name or "" for e in kept]

    assert run(database_url, work) == (2, ["d0", "d1", "d13"])


def test_prune_keeps_only_newest_rows_per_tenant(database_url: str) -> None:
    async def work(db: Database) -> tuple[int, list[int], int]:
        acme, _ = await tenants.create(db, "acme", connector="ledger")
        small, _ = await tenants.create(db, "small", connector="ledger")
        await provisioning_log.write(
            db,
            [
                scim(
                    acme.id, "PATCH /Users", "success", minutes_ago=minutes, target_id=str(minutes)
                )
                for minutes in range(12)
            ]
            + [scim(small.id, "PATCH /Users", "success", minutes_ago=1) for _ in range(3)],
        )
        deleted = await provisioning_log.prune(
            db, retention_days=14, max_rows_per_tenant=5, now=NOW, batch=4
        )
        kept = await provisioning_log.search(db, LogQuery(tenant_id=acme.id))
        others = await provisioning_log.search(db, LogQuery(tenant_id=small.id))
        return deleted, [int(e.target_id or -1) for e in kept], len(others)

    assert run(database_url, work) == (7, [0, 1, 2, 3, 4], 3)


def test_clean_error_masks_secrets_and_truncates() -> None:
    text = (
        "setUserProperties refused: card-number=1234567890123 pin: 4711 "
        "Authorization: Bearer abc.def token=pst_abcdefghijklmnop call 4111 1111 1111 1111 "
        "status 409 at 2026"
    )
    cleaned = redaction.clean_error(text)
    assert cleaned is not None
    for secret in (
        "1234567890123",
        "4711",
        "abc.def",
        "pst_abcdefghijklmnop",
        "4111 1111 1111 1111",
    ):
        assert secret not in cleaned
    assert "status 409 at 2026" in cleaned
    long = redaction.clean_error("x" * 2000)
    assert long is not None and len(long) == 500 and long.endswith("...")
    assert redaction.clean_error(None) is None


def test_buffered_error_text_is_cleaned_when_written(sqlite_url: str) -> None:
    async def work(db: Database) -> Entry:
        acme, _ = await tenants.create(db, "acme", connector="ledger")
        buffer = LogBuffer()
        buffer.append(
            acme.id,
            "PATCH /Users",
            400,
            target_id="u1",
            error="invalid value for pin=123456\n" + "y" * 900,
        )
        await buffer.flush(db)
        return (await provisioning_log.search(db, LogQuery(tenant_id=acme.id)))[0]

    found = run(sqlite_url, work)
    assert found.error is not None
    assert "123456" not in found.error and "\n" not in found.error
    assert len(found.error) == 500


def test_parse_time_accepts_iso_and_durations() -> None:
    assert provisioning_log.parse_time("2026-03-02") == "2026-03-02T00:00:00.000000Z"
    assert provisioning_log.parse_time("2026-03-02T13:00:00+01:00") == "2026-03-02T12:00:00.000000Z"
    assert provisioning_log.parse_time("2026-03-02T12:00:00Z") == "2026-03-02T12:00:00.000000Z"
    assert provisioning_log.parse_time("90m", now=NOW) == at(90)
    assert provisioning_log.parse_time("2h", now=NOW) == at(120)
    assert provisioning_log.parse_time("1d", now=NOW) == at(24 * 60)
    with pytest.raises(ValueError, match="neither an ISO 8601"):
        provisioning_log.parse_time("yesterday")


def test_effect_entry_logs_outcome_under_effect_subject(database_url: str) -> None:
    async def work(db: Database) -> list[Entry]:
        acme, _ = await tenants.create(db, "acme", connector="ledger")
        await record_effects(
            db,
            acme.id,
            outbox.ACCOUNT_DELETE,
            "u-7",
            version=3,
            payload={"userName": "Eve@Acme.com", "groups": []},
        )
        (effect,) = await outbox.list_effects(db, acme.id)
        retried = provisioning_log.effect_entry(effect, "retried", error="connection refused")
        await provisioning_log.write(db, [retried])
        await provisioning_log.write(db, [provisioning_log.effect_entry(effect, "success")])
        return await provisioning_log.search(db, LogQuery(tenant_id=acme.id, target="eve@acme.com"))

    found = run(database_url, work)
    assert [(e.source, e.operation, e.result, e.target_id, e.target_name) for e in found] == [
        ("effect", "account.delete", "success", "u-7", "Eve@Acme.com"),
        ("effect", "account.delete", "retried", "u-7", "Eve@Acme.com"),
    ]
    assert found[1].error == "connection refused"
