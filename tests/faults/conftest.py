"""Fault-injection harness: private services, real printsync processes, Entra-like traffic.

Fault tests never touch the shared PostgreSQL and Redis servers other tests use: a broker that
goes down is a private ``redis-server`` on a free port, and a database that restarts is a private
PostgreSQL cluster in a temporary directory. Everything listens on loopback.

Outages that last minutes in production are compressed to seconds: the timings of the processes
(lease, sweep, backoff, PaperCut timeouts, the notification interval) come from ``PRINTSYNC_*``
variables set here, and the length of each outage is :data:`OUTAGE_SECONDS`
(``PRINTSYNC_TEST_OUTAGE_SECONDS``, default 5), so the same tests can be run with real minutes.

The traffic (:class:`ScimLoad`) behaves like Entra ID: it retries 503 answers and lost
connections, resolves an ambiguous create through the 409 that follows, and records every answer.
Each user it provisions has a fate (stay active with a new card, be revoked, be deleted), from
which :func:`assert_converged` derives exactly which print accounts and effects must exist.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa

from storage import clock, ledger, migrate, outbox, tenants
from storage.blocking import BlockingDatabase
from storage.scim.schema import PRINTSYNC_USER
from tests.builders import patch_body, print_user, replace
from tests.conftest import require
from tests.fakes.papercut import (
    DEFAULT_TOKEN,
    FakePaperCutServer,
    papercut_server_fixture,  # noqa: F401
)
from tests.fakes.smtp import free_port, smtp_server_fixture  # noqa: F401
from tests.harness import Process, Start, eventually
from tests.harness import processes as processes

TOKEN_ENV = "TEST_FAULTS_PAPERCUT_TOKEN"

#: How long each injected outage lasts (seconds); production outages of minutes, compressed.
OUTAGE_SECONDS = float(os.environ.get("PRINTSYNC_TEST_OUTAGE_SECONDS", "5"))
#: The relays' sweep interval in the processes under test (seconds).
SWEEP_SECONDS = 0.2
#: How long a test waits for the system to settle once the fault is over.
SETTLE_SECONDS = 60.0 + 2 * OUTAGE_SECONDS


# Private Redis ----------------------------------------------------------------------------------


class PrivateRedis:
    """A ``redis-server`` of one test, without persistence: a restart loses every message."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.process is not None:
            raise RuntimeError("the private Redis is already running")
        self.starts += 1
        log = self.workdir / f"redis-{self.port}-{self.starts}.log"
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "no",
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        eventually(self.ping, timeout=10, describe=lambda: log.read_text(errors="replace"))

    def ping(self) -> bool:
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """Down hard: the process and every message it held are gone."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
        self.process.wait(10)
        self.process = None

    def pause(self) -> None:
        """Freeze the server: connections are accepted by the kernel but never answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    require("redis-server", shutil.which("redis-server") is not None)
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


# Private PostgreSQL -----------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


class PrivatePostgres:
    """A PostgreSQL cluster of one test, in a temporary directory, on a free loopback port.

    PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to the
    ``postgres`` system user and its commands run through ``runuser``.
    """

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="printsync-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def url(self, database: str = "printsync") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as, str(self.bindir / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str = "printsync") -> str:
        engine = sa.create_engine(
            sa.make_url(self.url("postgres")).set(drivername="postgresql+psycopg"),
            isolation_level="AUTOCOMMIT",
        )
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        url = self.url(name)
        migrate.upgrade(url)
        return url

    def close(self) -> None:
        if self.running():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = _postgres_bin()
    usable = bindir is not None and (os.geteuid() != 0 or _has_user("postgres"))
    require("PostgreSQL server binaries", usable)
    assert bindir is not None
    cluster = PrivatePostgres(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.close()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


# printsync processes ----------------------------------------------------------------------------


def fault_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a printsync process under test: compressed timings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRINTSYNC_")}
    max_backoff_ms = max(1000, int(OUTAGE_SECONDS * 100))
    env.update(
        {
            "PRINTSYNC_DATABASE_URL": database_url,
            "PRINTSYNC_DATABASE_POOL_SIZE": "4",
            "PRINTSYNC_LEASE_SECONDS": "2",
            "PRINTSYNC_SWEEP_INTERVAL_SECONDS": str(SWEEP_SECONDS),
            "PRINTSYNC_MIN_BACKOFF_MS": "100",
            "PRINTSYNC_MAX_BACKOFF_MS": str(max_backoff_ms),
            "PRINTSYNC_MAX_RETRIES": "50",
            "PRINTSYNC_WORKER_PROCESSES": "1",
            "PRINTSYNC_WORKER_THREADS": "4",
            "PRINTSYNC_PAPERCUT_TIMEOUT_SECONDS": "1",
            "PRINTSYNC_PAPERCUT_RETRY_INITIAL_WAIT_SECONDS": "0.01",
            "PRINTSYNC_PAPERCUT_RETRY_BUDGET_SECONDS": "0.3",
            "PRINTSYNC_NOTIFY_INTERVAL_SECONDS": "0.5",
            "PRINTSYNC_SMTP_TIMEOUT_SECONDS": "2",
            "PRINTSYNC_AUTH_CACHE_SECONDS": "1",
            # The traffic stays far below this; the tests are about faults, not throttling.
            "PRINTSYNC_RATE_LIMIT_PER_SECOND": "1000",
            "PRINTSYNC_RATE_LIMIT_BURST": "2000",
            # Most users are revoked or deleted; the tests are about faults, not the guard.
            "PRINTSYNC_DEPROVISION_GUARD_WINDOW_SECONDS": "0",
            TOKEN_ENV: DEFAULT_TOKEN,
        }
    )
    env.update(extra)
    return env


def start_worker(start: Start, env: dict[str, str], *, sweeper: bool = True) -> Process:
    """``printsync worker`` (one process of four threads, plus the sweeper)."""
    return start(["worker"] if sweeper else ["worker", "--no-sweeper"], env)


# The database, seen from the test -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantRef:
    name: str
    token: str
    id: int
    connector: str


class Probe:
    """Reads and seeds the database from the test's thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.store = BlockingDatabase(url, pool_size=1)

    def tenant(
        self,
        connector: str = "ledger",
        *,
        papercut: FakePaperCutServer | None = None,
        notify: tuple[str, ...] = (),
        token_env: str = TOKEN_ENV,
    ) -> TenantRef:
        options: dict[str, Any] = {"notify": notify, "connector": connector}
        if connector == "papercut":
            assert papercut is not None
            options.update(
                connector="papercut",
                connector_config={"url": papercut.base_url, "token_env": token_env},
            )
        name = f"t-{uuid.uuid4().hex[:10]}"
        created, token = self.store.run(tenants.create, name, **options)
        return TenantRef(name, token, created.id, connector)

    def accounts(self, tenant_id: int) -> dict[str, ledger.Account]:
        return {
            account.username: account for account in self.store.run(ledger.list_accounts, tenant_id)
        }

    def effects(self, tenant_id: int, state: str | None = None) -> list[outbox.Effect]:
        return self.store.run(outbox.list_effects, tenant_id, state=state, limit=100_000)

    def settled(self, tenant_id: int) -> bool:
        """No effect of the tenant is due and unfinished (scheduled purges are not due)."""
        now = clock.stamp()
        return not [e for e in self.effects(tenant_id, outbox.PENDING) if e.created_at <= now]

    def describe(self, tenant_id: int) -> str:
        unfinished = [
            (e.id, e.kind, e.state, e.attempts, e.last_error)
            for e in self.effects(tenant_id)
            if e.state != outbox.DONE
        ]
        return f"unfinished effects: {unfinished[:20]!r}"

    def wait_settled(
        self, refs: Sequence[TenantRef], *extra: Process, timeout: float = SETTLE_SECONDS
    ) -> None:
        def describe() -> str:
            logs = "\n".join(process.output()[-2500:] for process in extra)
            return "; ".join(self.describe(ref.id) for ref in refs) + "\n" + logs

        eventually(
            lambda: all(self.settled(ref.id) for ref in refs),
            timeout,
            interval=0.1,
            describe=describe,
        )

    def close(self) -> None:
        self.store.close()


# Entra-like traffic -----------------------------------------------------------------------------

#: A user's fate: what the load does after creating it.
ACTIVE = "active"  # a new card number
REVOKED = "revoked"  # active=false
DELETED = "deleted"  # DELETE
FATES = (ACTIVE, REVOKED, DELETED)


@dataclass(slots=True)
class Answer:
    """One HTTP exchange: ``status`` None for a transport failure (``error`` names it)."""

    at: float
    method: str
    status: int | None
    retry_after: str | None = None
    error: str | None = None


@dataclass(slots=True)
class UserPlan:
    tenant: TenantRef
    fate: str
    user_name: str
    first_card: str
    card: str
    user_id: str | None = None
    complete: bool = False
    problem: str | None = None

    @property
    def expected(self) -> tuple[bool, str] | None:
        """The print account (may print, card number) an active user must end with; None for a
        revoked or deleted user, whose account must be revoked or absent (a create whose effect
        ran after the revocation finds the user inactive and creates nothing)."""
        return (True, self.card) if self.fate == ACTIVE else None


class ScimLoad:
    """Provisions users through the SCIM API from background threads until stopped.

    Each user is created, then (by turn) given a new card, revoked (``active=false``) or deleted.
    A 503 or a lost connection is retried, as Entra does; such an attempt may have committed, so
    a 409 on the create that follows it (or a 404 on a delete) means the earlier attempt won.
    Anything else unexpected is recorded as the user's ``problem``. A user started before
    :meth:`stop` is always finished.
    """

    def __init__(
        self,
        base: str,
        refs: Sequence[TenantRef],
        *,
        threads: int = 2,
        pause: float = 0.02,
        deadline: float = 90.0,
    ) -> None:
        self.base = base
        self.refs = list(refs)
        self.threads = threads
        self.pause = pause
        self.deadline = deadline
        self.plans: list[UserPlan] = []
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._run = uuid.uuid4().hex[:6]

    def __enter__(self) -> ScimLoad:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        for number in range(self.threads):
            thread = threading.Thread(target=self._loop, name=f"scim-load-{number}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(self.deadline + 30)
        self._workers.clear()

    def answers_between(self, start: float, end: float) -> list[Answer]:
        with self._lock:
            return [answer for answer in self.answers if start <= answer.at <= end]

    def wait_for_users(self, count: int, timeout: float = 30.0) -> None:
        eventually(lambda: len([p for p in self.plans if p.complete]) >= count, timeout)

    def run_one(self, ref: TenantRef, fate: str) -> UserPlan:
        """Provision one user with a given fate on the calling thread."""
        with httpx.Client(base_url=self.base, timeout=15) as client:
            plan = self._plan(next(self._counter), ref, fate)
            self._provision(client, plan)
        return plan

    def _loop(self) -> None:
        with httpx.Client(base_url=self.base, timeout=15) as client:
            while not self._stop.is_set():
                index = next(self._counter)
                plan = self._plan(
                    index,
                    self.refs[index % len(self.refs)],
                    FATES[(index // len(self.refs)) % len(FATES)],
                )
                self._provision(client, plan)
                self._stop.wait(self.pause)

    def _plan(self, index: int, ref: TenantRef, fate: str) -> UserPlan:
        plan = UserPlan(
            ref,
            fate,
            f"u{index}-{self._run}@example.com",
            first_card=f"1{index:05d}",
            card=f"9{index:05d}",
        )
        with self._lock:
            self.plans.append(plan)
        return plan

    def _provision(self, client: httpx.Client, plan: UserPlan) -> None:
        prefix = f"/scim/v2/{plan.tenant.name}"
        headers = {
            "Authorization": f"Bearer {plan.tenant.token}",
            "Content-Type": "application/scim+json",
        }
        created = self._call(
            client,
            plan,
            "POST",
            f"{prefix}/Users",
            headers,
            print_user(plan.user_name, plan.first_card),
            ok=201,
            settled=409,
        )
        if created is None:
            return
        if created.status_code == 201:
            plan.user_id = created.json()["id"]
        else:  # an earlier attempt committed: find the user it created
            found = self._call(
                client,
                plan,
                "GET",
                f"{prefix}/Users",
                headers,
                None,
                ok=200,
                params={"filter": f'userName eq "{plan.user_name}"'},
            )
            if found is None:
                return
            resources = found.json().get("Resources", [])
            if len(resources) != 1:
                plan.problem = f"create answered 409 but {len(resources)} users match"
                return
            plan.user_id = resources[0]["id"]
        target = f"{prefix}/Users/{plan.user_id}"
        if plan.fate == ACTIVE:
            body = patch_body(replace(f"{PRINTSYNC_USER}:cardNumber", plan.card))
            done = self._call(client, plan, "PATCH", target, headers, body, ok=200)
        elif plan.fate == REVOKED:
            done = self._call(
                client, plan, "PATCH", target, headers, patch_body(replace("active", False)), ok=200
            )
        else:
            done = self._call(client, plan, "DELETE", target, headers, None, ok=204, settled=404)
        plan.complete = done is not None

    def _call(
        self,
        client: httpx.Client,
        plan: UserPlan,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Any,
        *,
        ok: int,
        settled: int | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response | None:
        """Send until ``ok`` (or ``settled`` once an attempt may have committed)."""
        ambiguous = False
        give_up = time.monotonic() + self.deadline
        while True:
            try:
                response = client.request(method, path, json=body, headers=headers, params=params)
            except httpx.TransportError as error:
                self._record(Answer(time.monotonic(), method, None, error=type(error).__name__))
                ambiguous = True
            else:
                status = response.status_code
                self._record(
                    Answer(
                        time.monotonic(),
                        method,
                        status,
                        retry_after=response.headers.get("retry-after"),
                    )
                )
                if status == ok or (ambiguous and status == settled):
                    return response
                if status != 503:
                    plan.problem = f"{method} {path}: {status} {response.text[:300]}"
                    return None
                ambiguous = True
            if time.monotonic() > give_up:
                plan.problem = f"{method} {path}: still failing after {self.deadline} s"
                return None
            time.sleep(0.1)  # Entra would honour Retry-After; the tests compress time

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)


def scim_client(base: str, ref: TenantRef) -> httpx.Client:
    """An HTTP client for one tenant's SCIM endpoint."""
    return httpx.Client(
        base_url=f"{base}/scim/v2/{ref.name}",
        timeout=15,
        headers={"Authorization": f"Bearer {ref.token}", "Content-Type": "application/scim+json"},
    )


def assert_api_answered(load: ScimLoad, *, allow_unavailable: bool = False) -> None:
    """Every user was provisioned; every answer was a success or, if allowed, a retryable 503
    with Retry-After. Never a 500, never a lost write (checked by :func:`assert_converged`)."""
    problems = [(plan.user_name, plan.problem) for plan in load.plans if plan.problem]
    assert problems == []
    assert all(plan.complete for plan in load.plans)
    allowed = {200, 201, 204} | ({503} if allow_unavailable else set())
    if allow_unavailable:
        allowed.add(404)  # the delete after an attempt that may have committed
        allowed.add(409)  # the create after an attempt that may have committed
    bad = [
        answer
        for answer in load.answers
        if answer.status not in allowed and not (allow_unavailable and answer.status is None)
    ]
    assert bad == []
    no_retry_after = [a for a in load.answers if a.status == 503 and not a.retry_after]
    assert no_retry_after == []


def assert_recorded(base: str, plans: Sequence[UserPlan]) -> None:
    """No acknowledged write was lost: the API serves each user as its last change left it."""
    for plan in plans:
        assert plan.user_id is not None
        with scim_client(base, plan.tenant) as client:
            found = client.get(f"/Users/{plan.user_id}")
        if plan.fate == DELETED:
            assert found.status_code == 404, plan.user_name
            continue
        assert found.status_code == 200, plan.user_name
        doc = found.json()
        assert (doc["userName"], doc["active"], doc[PRINTSYNC_USER]["cardNumber"]) == (
            plan.user_name,
            plan.fate == ACTIVE,
            plan.card if plan.fate == ACTIVE else plan.first_card,
        )


def _ledger_view(probe: Probe, ref: TenantRef) -> dict[str, tuple[bool, str]]:
    return {
        name: (account.enabled, account.card_number)
        for name, account in probe.accounts(ref.id).items()
    }


def _papercut_view(server: FakePaperCutServer) -> dict[str, tuple[bool, str]]:
    with server.lock:
        return {
            name: (props["disabled-print"] == "false", props["primary-card-number"])
            for name, props in server.users.items()
        }


def assert_converged(
    probe: Probe,
    plans: Sequence[UserPlan],
    refs: Sequence[TenantRef],
    papercut: FakePaperCutServer | None = None,
) -> None:
    """Each committed change has had its effect, once: the print accounts are exactly those the
    users' fates call for, and each user has exactly the effects its changes recorded, all done
    (a deletion's purge is scheduled for after the retention period)."""
    for ref in refs:
        mine = [plan for plan in plans if plan.tenant == ref]
        if ref.connector == "papercut":
            assert papercut is not None
            view = _papercut_view(papercut)
            assert papercut.deleted == []  # nothing was deleted: purges are not due yet
        else:
            view = _ledger_view(probe, ref)
        expected = {plan.user_name: plan.expected for plan in mine if plan.expected is not None}
        revoked = {plan.user_name for plan in mine if plan.expected is None}
        assert {name: view.get(name) for name in expected} == expected
        assert set(view) - set(expected) <= revoked  # no stray account
        assert {name: view[name] for name in revoked if name in view} == {
            name: (False, "") for name in revoked if name in view
        }

        by_subject: dict[str, list[outbox.Effect]] = {}
        for effect in probe.effects(ref.id):
            by_subject.setdefault(effect.subject_id, []).append(effect)
        assert {plan.user_id for plan in mine} == set(by_subject)
        now = clock.stamp()
        for plan in mine:
            assert plan.user_id is not None
            found = sorted(
                (e.effect_key, e.state)
                for e in by_subject[plan.user_id]
                if e.kind != outbox.ACCOUNT_PURGE
            )
            want = [(f"{outbox.ACCOUNT_SYNC}:{plan.user_id}:v1", outbox.DONE)]
            if plan.fate == DELETED:
                want.insert(0, (f"{outbox.ACCOUNT_DELETE}:{plan.user_id}:v1", outbox.DONE))
            else:
                want.append((f"{outbox.ACCOUNT_SYNC}:{plan.user_id}:v2", outbox.DONE))
            assert found == want, plan.user_name
            purges = [e for e in by_subject[plan.user_id] if e.kind == outbox.ACCOUNT_PURGE]
            if plan.fate == DELETED:
                assert [(e.state, e.created_at > now) for e in purges] == [(outbox.PENDING, True)]
            else:
                assert purges == []
