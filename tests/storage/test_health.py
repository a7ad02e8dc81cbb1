"""The health model: the pure decision, and the numbers read from the log and the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from prometheus_client import REGISTRY

from metrics.collectors import TenantHealth
from printsync.settings import load
from storage import clock, health, outbox, provisioning_log, tenants
from storage.database import Database, in_transaction
from storage.health import Health, HealthBoard, HealthPolicy, Numbers, Verdict, assess
from storage.provisioning_log import Entry
from tests.harness import run
from tests.support_a import record_effects

T = TypeVar("T")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
POLICY = HealthPolicy()


def numbers(**values: float | int | str | None) -> Numbers:
    return Numbers(window_seconds=3600, **values)  # type: ignore[arg-type]


def ago(minutes: float, moment: datetime = NOW) -> str:
    return clock.stamp(moment - timedelta(minutes=minutes))


def scim_traffic(requests: int, succeeded: int, **others: int) -> Verdict:
    """The verdict on an hour of ``requests`` SCIM requests, ``succeeded`` of them (the last a
    minute ago), with the ``others`` numbers (errors, effects)."""
    values = numbers(
        scim_requests=requests, scim_succeeded=succeeded, last_success_at=ago(1), **others
    )
    return assess(values, POLICY, NOW)


# The decision -------------------------------------------------------------------------------------


def test_assess_without_traffic_is_healthy() -> None:
    verdict = assess(numbers(), POLICY, NOW)
    assert verdict.state == "healthy"
    assert verdict.reason == "No SCIM requests or effects in the last hour."


def test_assess_all_succeeded_is_healthy_and_says_so() -> None:
    verdict = scim_traffic(40, 40, effects_succeeded=12)
    assert verdict.state == "healthy"
    assert verdict.reason == "All 40 SCIM requests and 12 effects in the last hour succeeded."


def test_assess_few_failures_within_threshold_is_healthy() -> None:
    verdict = scim_traffic(100, 96, scim_client_errors=4)
    assert verdict.state == "healthy"
    assert "within the thresholds" in verdict.reason


def test_assess_more_than_five_percent_failed_is_degraded() -> None:
    verdict = scim_traffic(100, 90, scim_client_errors=10)
    assert verdict.state == "degraded"
    assert verdict.reason == (
        "10% of SCIM requests in the last hour failed (10 of 100; 0 server errors)."
    )


def test_assess_more_than_forty_percent_failed_is_failing() -> None:
    verdict = scim_traffic(50, 24, scim_client_errors=26)
    assert verdict.state == "failing"
    assert verdict.reason.startswith("52% of SCIM requests in the last hour failed (26 of 50")


def test_assess_exactly_forty_percent_is_only_degraded() -> None:
    verdict = scim_traffic(50, 30, scim_client_errors=20)
    assert verdict.state == "degraded"


def test_assess_below_minimum_requests_ignores_ratio() -> None:
    verdict = scim_traffic(9, 1, scim_client_errors=8)
    assert verdict.state == "healthy"


def test_assess_server_errors_weigh_more_than_client_errors() -> None:
    client = scim_traffic(100, 97, scim_client_errors=3)
    server = scim_traffic(100, 97, scim_server_errors=3)
    many = scim_traffic(100, 75, scim_server_errors=25)
    assert client.state == "healthy"
    assert server.state == "degraded"
    assert "3% of SCIM requests in the last hour ended in a server error" in server.reason
    assert many.state == "failing"
    assert "ended in a server error (25 of 100)" in many.reason


def test_assess_any_dead_effect_is_degraded() -> None:
    verdict = assess(numbers(effects_succeeded=50, effects_dead=1), POLICY, NOW)
    assert verdict.state == "degraded"
    assert verdict.reason.startswith("1 effect gave up in the last hour")


def test_assess_most_effects_failing_is_failing() -> None:
    verdict = assess(numbers(effects_succeeded=5, effects_retrying=3, effects_dead=4), POLICY, NOW)
    assert verdict.state == "failing"
    assert (
        "58% of effects in the last hour failed (7 of 12; 4 gave up, 3 retrying)." in verdict.reason
    )
    assert [f.state for f in verdict.findings] == ["failing", "degraded"]


def test_assess_outbox_lag_degrades_then_fails() -> None:
    slow = assess(numbers(oldest_pending_age_seconds=301), POLICY, NOW)
    stuck = assess(numbers(oldest_pending_age_seconds=3 * 3600 + 60), POLICY, NOW)
    fine = assess(numbers(oldest_pending_age_seconds=30), POLICY, NOW)
    assert slow.state == "degraded"
    assert slow.reason == "The oldest pending effect has waited 5 min."
    assert stuck.state == "failing"
    assert stuck.reason == "The oldest pending effect has waited 3 h 1 min."
    assert fine.state == "healthy"


def test_assess_calls_without_success_for_three_cycles_is_failing() -> None:
    stalled = assess(
        numbers(scim_requests=3, scim_client_errors=3, last_success_at=ago(125)), POLICY, NOW
    )
    recent = assess(
        numbers(scim_requests=3, scim_client_errors=3, last_success_at=ago(100)), POLICY, NOW
    )
    never = assess(
        numbers(scim_requests=2, scim_server_errors=2, first_seen_at=ago(180)), POLICY, NOW
    )
    assert stalled.state == "failing"
    assert stalled.reason == (
        "No SCIM request has succeeded for 2 h 5 min although Entra "
        "keeps calling (3 requests in the last hour)."
    )
    assert recent.state == "healthy"
    assert never.state == "failing"
    assert never.reason.startswith("No SCIM request has ever succeeded, for 3 h")


def test_assess_follows_policy_thresholds() -> None:
    strict = HealthPolicy(min_requests=2, failing_failure_ratio=0.1, window_seconds=900)
    verdict = assess(
        Numbers(
            window_seconds=900,
            scim_requests=4,
            scim_succeeded=3,
            scim_client_errors=1,
            last_success_at=ago(1),
        ),
        strict,
        NOW,
    )
    assert verdict.state == "failing"
    assert "in the last 15 min failed" in verdict.reason


def test_policy_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRINTSYNC_HEALTH_FAILING_FAILURE_RATIO", "0.25")
    monkeypatch.setenv("PRINTSYNC_HEALTH_WINDOW_SECONDS", "600")
    policy = load().health()
    assert policy.failing_failure_ratio == 0.25
    assert policy.window_seconds == 600
    assert policy.degraded_failure_ratio == 0.05


# Reading the numbers ------------------------------------------------------------------------------


def requests(
    tenant_id: int, result: str, count: int, minutes_ago: float, moment: datetime = NOW
) -> list[Entry]:
    status = {"success": 200, "client_error": 409, "server_error": 500}[result]
    return [
        provisioning_log.entry(
            tenant_id,
            "PATCH /Users",
            result,
            source="scim",
            target_id=f"u{n}",
            status=status,
            time=ago(minutes_ago, moment),
        )
        for n in range(count)
    ]


def test_read_moves_from_healthy_to_failing_and_back_with_reason(database_url: str) -> None:
    async def work(db: Database) -> list[Health]:
        acme, _ = await tenants.create(db, "acme", connector="ledger")
        await provisioning_log.write(db, requests(acme.id, "success", 20, 50))
        before = await health.read(db, acme, POLICY, NOW)
        await provisioning_log.write(db, requests(acme.id, "client_error", 30, 10))
        broken = await health.read(db, acme, POLICY, NOW)
        later = NOW + timedelta(minutes=70)
        await provisioning_log.write(db, requests(acme.id, "success", 15, 5, later))
        healed = await health.read(db, acme, POLICY, later)
        return [before, broken, healed]

    before, broken, healed = run(database_url, work)
    assert (before.state, before.reason) == (
        "healthy",
        "All 20 SCIM requests and 0 effects in the last hour succeeded.",
    )
    assert broken.state == "failing"
    assert broken.reason == (
        "60% of SCIM requests in the last hour failed (30 of 50; 0 server errors)."
    )
    assert broken.numbers.scim_requests == 50
    assert broken.numbers.scim_client_errors == 30
    assert broken.numbers.last_success_at == ago(50)
    assert healed.state == "healthy"
    assert healed.numbers.scim_requests == 15
    assert healed.as_dict()["numbers"]["scim_failure_ratio"] == 0


def test_read_counts_effects_and_pending_age_from_outbox(database_url: str) -> None:
    async def work(db: Database) -> tuple[Health, Health]:
        acme, _ = await tenants.create(db, "acme", connector="ledger")
        quiet, _ = await tenants.create(db, "quiet", connector="ledger")
        created = clock.now() - timedelta(minutes=7)
        subjects = [f"u{number}" for number in range(4)]
        await record_effects(db, acme.id, outbox.ACCOUNT_SYNC, *subjects, now=clock.stamp(created))
        effects = sorted(await outbox.list_effects(db, acme.id), key=lambda e: e.id)
        await in_transaction(db, outbox.complete, effects[0].id)
        await in_transaction(
            db, outbox.give_up, effects[1].id, error="PaperCut refused: invalid email"
        )
        await in_transaction(
            db,
            outbox.fail_transient,
            effects[2].id,
            error="timeout",
            delay_seconds=60,
            lease_seconds=30,
        )
        moment = clock.now()
        return (
            await health.read(db, acme, POLICY, moment),
            await health.read(db, quiet, POLICY, moment),
        )

    acme, quiet = run(database_url, work)
    assert acme.numbers.effects_succeeded == 1
    assert acme.numbers.effects_dead == 1
    assert acme.numbers.effects_retrying == 1
    assert acme.numbers.oldest_pending_age_seconds is not None
    assert 7 * 60 - 5 < acme.numbers.oldest_pending_age_seconds < 7 * 60 + 30
    assert acme.state == "degraded"
    assert "1 effect gave up in the last hour" in acme.reason
    assert "The oldest pending effect has waited 7 min." in acme.reason
    assert quiet.state == "healthy"
    assert quiet.numbers.oldest_pending_age_seconds is None


def test_board_rows_report_latest_state_per_tenant(sqlite_url: str) -> None:
    async def work(db: Database) -> list[TenantHealth]:
        acme, _ = await tenants.create(db, "acme", connector="ledger")
        globex, _ = await tenants.create(db, "globex", connector="ledger")
        await provisioning_log.write(db, requests(acme.id, "server_error", 12, 1, clock.now()))
        await provisioning_log.write(db, requests(globex.id, "success", 1, 0, LAST_SUCCESS))
        board = HealthBoard()
        assert board.rows() == []
        await board.refresh(db, POLICY)
        return board.rows()

    assert run(sqlite_url, work) == [
        TenantHealth("acme", "failing"),
        TenantHealth("globex", "healthy"),
    ]
    assert (
        REGISTRY.get_sample_value(
            "printsync_tenant_last_success_timestamp_seconds", {"tenant": "globex"}
        )
        == LAST_SUCCESS.timestamp()
    )


LAST_SUCCESS = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
