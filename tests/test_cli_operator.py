"""What the ``printsync`` command tells an operator: a fresh database is migrated (embedded SQLite)
or named as needing ``printsync db upgrade``; a mistake is one ``Error:`` line, never a
traceback; ``db check`` is quiet when all is well; changes to a tenant say when running servers
see them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from printsync.cli import cli
from storage import tenants
from storage.database import Database
from tests.conftest import scratch_postgres
from tests.harness import clean_environ, python
from tests.harness import run as run_on
from tests.workers.test_notify import dead_effects


def printsync(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed command's entry point, in a process of its own."""
    return python(["-m", "printsync", *args], cwd=cwd, env={**clean_environ(), **env})


def test_tenant_commands_on_a_fresh_embedded_database_migrate_it_first(tmp_path: Path) -> None:
    listed = printsync("tenant", "list", cwd=tmp_path)
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "no tenants\n", "")
    created = printsync("tenant", "create", "contoso", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "Secret Token: pst_" in created.stdout
    assert (tmp_path / "var" / "printsync.sqlite3").stat().st_size > 0
    again = printsync("tenant", "list", cwd=tmp_path)
    assert "contoso" in again.stdout and "Traceback" not in again.stderr


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """A PostgreSQL database that exists but has never been migrated."""
    with scratch_postgres(f"printsync_empty_{os.getpid()}") as url:
        yield url


@pytest.mark.parametrize(
    "args", [("tenant", "list"), ("tenant", "create", "contoso"), ("log",), ("db", "check")]
)
def test_commands_on_an_unmigrated_postgresql_say_to_run_db_upgrade(
    empty_postgres: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    done = printsync(*args, cwd=tmp_path, PRINTSYNC_DATABASE_URL=empty_postgres)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: the database at postgresql://")
    assert "has no printsync schema: run `printsync db upgrade`" in lines[0]
    upgraded = printsync("db", "upgrade", cwd=tmp_path, PRINTSYNC_DATABASE_URL=empty_postgres)
    assert upgraded.returncode == 0 and "is at schema" in upgraded.stdout
    assert upgraded.stderr == ""


def invoke(database_url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("PRINTSYNC_DATABASE_URL", database_url)
    monkeypatch.delenv("PRINTSYNC_BROKER_URL", raising=False)
    return CliRunner().invoke(cli, list(args))


#: Operators' mistakes, each with a piece of the one line that answers it.
MISTAKES = [
    (("tenant", "create", "acme"), "tenant acme already exists"),
    (("tenant", "create", "Bad Name!"), "tenant name must be"),
    (("tenant", "create", "pc", "--connector", "papercut"), "needs --papercut-url"),
    (("tenant", "create"), "Missing argument"),
    (("tenant", "create", "globex", "--notify", "it-admin"), "it-admin is not an e-mail address"),
    (("tenant", "rotate-token", "nope"), "no tenant named nope"),
    (("tenant", "rotate-token", "acme", "--overlap", "-1"), "not in the range"),
    (("tenant", "rotate-token", "acme", "--overlap", "soon"), "not a valid float"),
    (("tenant", "disable", "nope"), "no tenant named nope"),
    (("tenant", "enable", "nope"), "no tenant named nope"),
    (("tenant", "status", "nope"), "no tenant named nope"),
    (("log", "--since", "99999999d"), "before the year 1"),
    (("log", "--until", "yesterday"), "neither an ISO 8601 time"),
    (("log", "--tenant", "nope"), "no tenant named nope"),
    (("log", "--limit", "0"), "not in the range"),
    (("log", "--result", "maybe"), "is not one of"),
    (("accounts", "list", "--tenant", "nope"), "no tenant named nope"),
    (("accounts", "list"), "Missing option '--tenant'"),
    (("effects", "list", "--tenant", "nope"), "no tenant named nope"),
    (("effects", "list", "--tenant", "acme", "--state", "stuck"), "is not one of"),
    (("effects", "retry", "999", "--tenant", "acme"), "effect 999 of tenant acme is not dead"),
    (("effects", "retry", "--tenant", "acme"), "give either an effect ID or --dead"),
    (("effects", "retry", "x", "--tenant", "acme"), "is not a valid integer"),
    (("db", "upgrade", "--revision", "9999"), "Can't locate revision"),
    (("worker",), "PRINTSYNC_BROKER_URL is not set"),
    (("serve", "--port", "http"), "is not a valid integer"),
    (("effects", "approve", "--tenant", "nope"), "no tenant named nope"),
    (("reconcile", "--tenant", "nope"), "no tenant named nope"),
    (("reconcile",), "Missing option '--tenant'"),
    (("tenant", "update", "nope", "--guard-min", "5"), "no tenant named nope"),
    (("tenant", "update", "acme"), "give at least one setting to change"),
    (("tenant", "update", "acme", "--guard-percent", "500"), "not in the range"),
    (("no-such-command",), "No such command"),
]


@pytest.mark.parametrize(("args", "said"), MISTAKES, ids=[" ".join(m[0]) for m in MISTAKES])
def test_operator_mistakes_are_one_error_line_never_a_traceback(
    database_url: str, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], said: str
) -> None:
    assert invoke(database_url, monkeypatch, "tenant", "create", "acme").exit_code == 0
    result = invoke(database_url, monkeypatch, *args)
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and said in error_lines[0], result.output


def test_unreachable_database_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = printsync(
        "tenant", "list", cwd=tmp_path, PRINTSYNC_DATABASE_URL="postgresql://ops@127.0.0.1:9/x"
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: the database at postgresql://ops@127.0.0.1:9/x cannot")
    assert len(done.stderr.splitlines()) == 1


def test_db_check_is_quiet_when_all_is_well(tmp_path: Path) -> None:
    done = printsync("db", "check", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize(
    ("args", "until"),
    [
        (("tenant", "disable", "acme"), "its requests may still be accepted"),
        (("tenant", "enable", "acme"), "its requests may still be refused"),
        (("tenant", "rotate-token", "acme"), "the old token may still be accepted"),
    ],
)
def test_tenant_changes_say_when_running_servers_see_them(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], until: str
) -> None:
    monkeypatch.setenv("PRINTSYNC_AUTH_CACHE_SECONDS", "30")
    assert invoke(sqlite_url, monkeypatch, "tenant", "create", "acme").exit_code == 0
    result = invoke(sqlite_url, monkeypatch, *args)
    assert result.exit_code == 0, result.output
    assert (
        "Running servers apply this within 30 s (PRINTSYNC_AUTH_CACHE_SECONDS): "
        f"until then {until} there." in result.output
    )


def test_tenant_status_of_dead_effects_names_the_command_that_sends_them_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def work(db: Database) -> None:
        acme = await tenants.get(db, "acme")
        await dead_effects(db, acme, "ada@acme.com")

    assert invoke(database_url, monkeypatch, "tenant", "create", "acme").exit_code == 0
    run_on(database_url, work)
    out = invoke(database_url, monkeypatch, "tenant", "status", "acme").output
    assert "dead effects stay undone until sent again with" in out
    assert "`printsync effects retry --dead --tenant acme`" in out
    assert "reconciliation" not in out


def test_db_check_on_a_migrated_database_prints_nothing(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke(database_url, monkeypatch, "db", "check")
    assert (result.exit_code, result.output) == (0, "")
