"""The settings: one class declares every variable, README lists each with its default and range,
the packages' sections get the values, and every process refuses a bad value with one line naming
the variable and its rule, and exit status 2."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from api.settings import ApiSettings
from metrics.exposition import ENV_VAR as MULTIPROC_VARIABLE
from printsync.settings import Settings, SettingsError, is_placeholder, load, variable, variables
from storage.cycles import CycleSettings
from storage.guard import GuardPolicy
from storage.health import HealthPolicy
from storage.provisioning_log import LogSettings
from storage.settings import DatabaseSettings
from tests.harness import clean_environ, python
from workers.settings import NotifySettings, PaperCutSettings, WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
#: The sections and the prefix their fields' settings have.
SECTIONS: tuple[tuple[type[BaseModel], str], ...] = (
    (ApiSettings, ""),
    (DatabaseSettings, ""),
    (WorkerSettings, ""),
    (NotifySettings, ""),
    (PaperCutSettings, "papercut_"),
    (HealthPolicy, "health_"),
    (LogSettings, "provisioning_log_"),
    (CycleSettings, "cycle_"),
    (GuardPolicy, "deprovision_guard_"),
)
#: Settings printsync uses itself rather than handing them to a section.
PROCESS_SETTINGS = {
    "environment",
    "host",
    "port",
    "prometheus_multiproc_dir",
    "limit_concurrency",
    "keepalive_timeout_seconds",
    "request_timeout_seconds",
}
EN_DASH = "\u2013"
STRONG_TOKEN = "Zq3vXw8sLk2Rb7Nt5Hy9Pd4Mf6Jc1Ga0"


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """An environment without any setting; set some with ``environ.setenv``."""
    for key in list(os.environ):
        if key.upper().startswith("PRINTSYNC_") or key.upper() == MULTIPROC_VARIABLE:
            monkeypatch.delenv(key)
    yield monkeypatch


def refusal(environ: pytest.MonkeyPatch, **values: str) -> list[str]:
    for key, value in values.items():
        environ.setenv(key, value)
    with pytest.raises(SettingsError) as caught:
        load()
    return caught.value.lines


# README -----------------------------------------------------------------------------------------


def readme_rows() -> dict[str, list[str]]:
    """The settings table of README: variable -> its cells."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip()[1:-1].split("|")]
            name = cells[0].strip("`")
            assert name not in rows, f"{name} is listed twice"
            rows[name] = cells
    return rows


def bounds(field: FieldInfo) -> str:
    """A field's numeric range as README writes it: ``≥ 0``, ``> 0, ≤ 120``, or the two bounds
    joined by an en dash."""
    found: dict[str, Any] = {}
    for item in field.metadata:
        for kind in ("ge", "gt", "le"):
            if isinstance(item, getattr(annotated_types, kind.capitalize())):
                found[kind] = plain(getattr(item, kind))
    if "ge" in found and "le" in found:
        return f"{found['ge']}{EN_DASH}{found['le']}"
    text = f"≥ {found['ge']}" if "ge" in found else f"> {found['gt']}" if "gt" in found else ""
    return f"{text}, ≤ {found['le']}" if "le" in found else text


def plain(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def test_readme_settings_table_lists_every_variable_of_the_settings_class() -> None:
    assert sorted(readme_rows()) == sorted(variables())


def test_readme_settings_table_gives_each_default_and_range() -> None:
    rows = readme_rows()
    for name, field in Settings.model_fields.items():
        _, default, rule, meaning = rows[variable(name)]
        if field.default is None:
            assert default.startswith("unset"), name
        else:
            assert default == f"`{plain(field.default)}`", name
        assert rule.startswith(bounds(field)), (name, rule, bounds(field))
        assert meaning, name


# Sections ---------------------------------------------------------------------------------------


def test_every_setting_reaches_a_section_or_the_process() -> None:
    nested = {"health", "notify", "papercut", "provisioning_log", "cycles", "guard"}
    used = set(PROCESS_SETTINGS)
    for model, prefix in SECTIONS:
        used |= {prefix + name for name in model.model_fields if name not in nested}
    assert used == set(Settings.model_fields)


def test_sections_of_an_empty_environment_equal_their_own_defaults(
    environ: pytest.MonkeyPatch,
) -> None:
    loaded = load()

    assert loaded.api() == ApiSettings()
    assert loaded.database() == DatabaseSettings()
    assert loaded.worker() == WorkerSettings()
    assert loaded.notify() == NotifySettings()
    assert loaded.papercut() == PaperCutSettings()
    assert loaded.health() == HealthPolicy()
    assert loaded.provisioning_log() == LogSettings()
    assert loaded.prometheus_multiproc_dir is None
    assert not loaded.production


def test_environment_values_reach_every_section_that_uses_them(
    environ: pytest.MonkeyPatch,
) -> None:
    environ.setenv("PRINTSYNC_HEALTH_WINDOW_SECONDS", "600")
    environ.setenv("PRINTSYNC_PROVISIONING_LOG_FLUSH_ROWS", "75")
    environ.setenv("PRINTSYNC_SMTP_URL", "smtp://127.0.0.1:2525")
    environ.setenv("PRINTSYNC_NOTIFY_INTERVAL_SECONDS", "0.5")
    environ.setenv("PRINTSYNC_DATABASE_BUSY_TIMEOUT_MS", "100")
    environ.setenv("PRINTSYNC_PUBLIC_URL", "https://printsync.example.com/")
    environ.setenv(MULTIPROC_VARIABLE, "/tmp/metrics")
    environ.setenv("PRINTSYNC_CYCLE_GAP_SECONDS", "120")
    environ.setenv("PRINTSYNC_DEPROVISION_GUARD_PERCENT", "35")
    environ.setenv("PRINTSYNC_PAPERCUT_RETRY_ATTEMPTS", "5")

    loaded = load()

    assert loaded.api().cycles.gap_seconds == 120
    assert loaded.api().guard == GuardPolicy(percent=35)
    assert loaded.worker().notify.guard == GuardPolicy(percent=35)
    assert loaded.worker().papercut == PaperCutSettings(retry_attempts=5)

    assert loaded.api().health.window_seconds == 600
    assert loaded.worker().health.window_seconds == 600
    assert loaded.api().provisioning_log.flush_rows == 75
    notify = loaded.worker().notify
    assert notify.smtp_url is not None
    assert notify.smtp_url.get_secret_value() == "smtp://127.0.0.1:2525"
    assert notify.notify_interval_seconds == 0.5
    assert loaded.database().database_busy_timeout_ms == 100
    assert loaded.api().tenant_url("acme") == "https://printsync.example.com/scim/v2/acme"
    assert loaded.prometheus_multiproc_dir == "/tmp/metrics"


# Refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        (
            "PRINTSYNC_NOTIFY_WINDOW_SECONDS",
            "30",
            "PRINTSYNC_NOTIFY_WINDOW_SECONDS: must be at least 60",
        ),
        ("PRINTSYNC_PORT", "http", "PRINTSYNC_PORT: must be a whole number"),
        ("PRINTSYNC_PORT", "70000", "PRINTSYNC_PORT: must be at most 65535"),
        ("PRINTSYNC_LEASE_SECONDS", "0", "PRINTSYNC_LEASE_SECONDS: must be greater than 0"),
        (
            "PRINTSYNC_HEALTH_FAILING_FAILURE_RATIO",
            "1.5",
            "PRINTSYNC_HEALTH_FAILING_FAILURE_RATIO: must be at most 1",
        ),
        (
            "PRINTSYNC_PROVISIONING_LOG_FLUSH_ROWS",
            "0",
            "PRINTSYNC_PROVISIONING_LOG_FLUSH_ROWS: must be at least 1",
        ),
        (
            "PRINTSYNC_ENVIRONMENT",
            "staging",
            "PRINTSYNC_ENVIRONMENT: must be 'development' or 'production'",
        ),
        (
            "PRINTSYNC_RATE_LIMIT_PER_SECOND",
            "nan",
            "PRINTSYNC_RATE_LIMIT_PER_SECOND: must be a finite number",
        ),
        (
            "PRINTSYNC_BROKER_URL",
            "kafka://127.0.0.1:9092",
            "PRINTSYNC_BROKER_URL: must start with one of redis://, rediss://, amqp://, amqps://"
            " (unset for the embedded broker)",
        ),
        (
            "PRINTSYNC_DATABASE_URL",
            "mysql://printsync@db/printsync",
            "PRINTSYNC_DATABASE_URL: must be sqlite:///path or postgresql://user@host:port/database",
        ),
        (
            "PRINTSYNC_SMTP_URL",
            "http://mail.example.com",
            "PRINTSYNC_SMTP_URL: the SMTP URL must be smtp://host[:port] or smtps://host[:port]",
        ),
        (
            "PRINTSYNC_MAIL_FROM",
            "printsync",
            "PRINTSYNC_MAIL_FROM: the sender must be an e-mail address",
        ),
        (
            "PRINTSYNC_QUEUE_NAME",
            "two words",
            "PRINTSYNC_QUEUE_NAME: must match ^[A-Za-z_][A-Za-z0-9._-]*$",
        ),
    ],
)
def test_bad_value_is_refused_with_its_variable_and_rule(
    environ: pytest.MonkeyPatch, name: str, value: str, line: str
) -> None:
    assert refusal(environ, **{name: value}) == [line]


def test_max_backoff_below_min_backoff_is_refused(environ: pytest.MonkeyPatch) -> None:
    lines = refusal(environ, PRINTSYNC_MIN_BACKOFF_MS="5000", PRINTSYNC_MAX_BACKOFF_MS="1000")
    assert lines == ["PRINTSYNC_MAX_BACKOFF_MS: must be at least PRINTSYNC_MIN_BACKOFF_MS (5000)"]
    # The default longest wait counts too.
    lines = refusal(environ, PRINTSYNC_MIN_BACKOFF_MS="4000000", PRINTSYNC_MAX_BACKOFF_MS="")
    assert lines == [
        "PRINTSYNC_MAX_BACKOFF_MS: must be at least PRINTSYNC_MIN_BACKOFF_MS (4000000)"
    ]


def test_several_bad_values_give_one_line_each(environ: pytest.MonkeyPatch) -> None:
    lines = refusal(environ, PRINTSYNC_PORT="0", PRINTSYNC_NOTIFY_WINDOW_SECONDS="1")
    assert lines == [
        "PRINTSYNC_PORT: must be at least 1",
        "PRINTSYNC_NOTIFY_WINDOW_SECONDS: must be at least 60",
    ]


# Secrets ----------------------------------------------------------------------------------------


def test_empty_secrets_mean_unset(environ: pytest.MonkeyPatch) -> None:
    for name in ("PRINTSYNC_ADMIN_TOKEN", "PRINTSYNC_BROKER_URL", "PRINTSYNC_SMTP_URL"):
        environ.setenv(name, "")
    loaded = load()
    assert loaded.api().admin_token is None
    assert loaded.worker().embedded
    assert loaded.notify().sender() is None
    assert Settings(admin_token="").admin_token is None
    assert ApiSettings(admin_token="").admin_token is None


@pytest.mark.parametrize("token", ["short-token", "changeme", "x" * 40, "…"])
def test_production_refuses_weak_admin_token(environ: pytest.MonkeyPatch, token: str) -> None:
    lines = refusal(environ, PRINTSYNC_ENVIRONMENT="production", PRINTSYNC_ADMIN_TOKEN=token)
    assert lines == [
        "PRINTSYNC_ADMIN_TOKEN: must be a long random secret (24+ characters) outside development"
    ]
    environ.setenv("PRINTSYNC_ENVIRONMENT", "development")
    assert load().api().admin_token is not None


def test_production_accepts_strong_admin_token(environ: pytest.MonkeyPatch) -> None:
    environ.setenv("PRINTSYNC_ENVIRONMENT", "production")
    environ.setenv("PRINTSYNC_ADMIN_TOKEN", STRONG_TOKEN)
    loaded = load()
    assert loaded.production
    token = loaded.api().admin_token
    assert token is not None and token.get_secret_value() == STRONG_TOKEN


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("PRINTSYNC_BROKER_URL", "amqp://printsync:changeme@rabbit:5672/"),
        ("PRINTSYNC_SMTP_URL", "smtps://mailer:secret@mail.example.com:465"),
    ],
)
def test_production_refuses_placeholder_password_in_url(
    environ: pytest.MonkeyPatch, name: str, url: str
) -> None:
    lines = refusal(environ, PRINTSYNC_ENVIRONMENT="production", **{name: url})
    assert lines == [f"{name}: its password is a placeholder; set a real one outside development"]
    environ.setenv("PRINTSYNC_ENVIRONMENT", "development")
    load()
    environ.setenv("PRINTSYNC_ENVIRONMENT", "production")
    environ.setenv(name, url.replace("changeme", STRONG_TOKEN).replace("secret", STRONG_TOKEN))
    load()


def test_placeholders_are_words_ellipses_and_repeats_not_random_text() -> None:
    assert all(is_placeholder(text) for text in ("CHANGEME", "secret", "...", "…", "aaaa", ""))
    assert not any(is_placeholder(text) for text in (STRONG_TOKEN, "printsync", "p4ss-w0rd"))


# Processes --------------------------------------------------------------------------------------


def run_printsync(
    tmp_path: Path, args: list[str], timeout: float = 60, **values: str
) -> subprocess.CompletedProcess[str]:
    env = clean_environ()
    env["PRINTSYNC_DATABASE_URL"] = f"sqlite:///{tmp_path / 'printsync.sqlite3'}"
    env.update(values)
    return python(args, cwd=ROOT, env=env, timeout=timeout)


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "printsync", "tenant", "list"],
        ["-m", "printsync", "db", "upgrade"],
        ["-m", "printsync", "log"],
        ["-m", "printsync", "worker"],
        ["-m", "printsync", "pipeline"],
        ["-m", "printsync.asgi"],
    ],
    ids=lambda args: " ".join(args[1:]),
)
def test_process_with_bad_value_prints_one_line_and_exits_2(
    tmp_path: Path, args: list[str]
) -> None:
    done = run_printsync(tmp_path, args, PRINTSYNC_NOTIFY_WINDOW_SECONDS="30")

    assert done.returncode == 2, done.stderr
    assert done.stderr == "PRINTSYNC_NOTIFY_WINDOW_SECONDS: must be at least 60\n"
    assert done.stdout == ""


def test_serve_with_bad_value_refuses_to_start(tmp_path: Path) -> None:
    done = run_printsync(
        tmp_path, ["-m", "printsync", "serve", "--port", "9"], PRINTSYNC_NOTIFY_WINDOW_SECONDS="30"
    )

    assert done.returncode == 2, done.stderr
    assert done.stderr == "PRINTSYNC_NOTIFY_WINDOW_SECONDS: must be at least 60\n"
    # It stopped before doing anything: serve creates and migrates a SQLite database first.
    assert not (tmp_path / "printsync.sqlite3").exists()


def test_help_works_whatever_the_settings(tmp_path: Path) -> None:
    done = run_printsync(
        tmp_path, ["-m", "printsync", "tenant", "list", "--help"], PRINTSYNC_PORT="0"
    )

    assert done.returncode == 0, done.stderr
    assert "Usage: printsync tenant list" in done.stdout


# Layering ---------------------------------------------------------------------------------------

ENVIRONMENT_READ = re.compile(r"\bos\.environ\b|\bgetenv\b|\bfrom os import\b|pydantic_settings")


def test_no_package_below_printsync_reads_the_environment() -> None:
    readers = [
        str(path.relative_to(ROOT))
        for package in ("api", "workers", "storage", "metrics")
        for path in sorted((ROOT / package).rglob("*.py"))
        if ENVIRONMENT_READ.search(path.read_text())
    ]
    assert readers == []
