"""compose.yaml: it parses, its services are the full stack, every printsync command it runs
exists in the CLI, every PRINTSYNC_ variable it sets is a setting, and every file it mounts is in
the repository. (No container engine runs here; this is what can be checked.)"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import yaml

from printsync import settings
from printsync.cli import cli
from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_compose_parses_with_the_full_stack() -> None:
    services = _compose()["services"]
    assert {
        "api",
        "worker",
        "migrate",
        "postgres",
        "redis",
        "prometheus",
        "grafana",
        "mailpit",
        "proxy",
    } <= set(services)
    assert services["api"]["deploy"]["replicas"] >= 2
    for name in ("postgres", "redis", "api"):
        assert "healthcheck" in services[name], name
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_printsync_commands_exist_in_the_cli() -> None:
    checked = 0
    for name, service in _compose()["services"].items():
        argv = _command(service)
        if not argv or argv[0] != "printsync":
            continue
        context = cli.make_context("printsync", argv[1:], resilient_parsing=True)
        group: click.Command = cli
        words = [word for word in argv[1:] if not word.startswith("-")]
        for word in words:
            if not isinstance(group, click.Group):
                break
            found = group.get_command(context, word)
            assert found is not None, f"{name}: unknown command {word!r}"
            group = found
        checked += 1
    assert checked >= 3


def test_compose_printsync_variables_exist_in_the_settings() -> None:
    known = set(settings.variables())
    anchor = _compose().get("x-printsync-env", {})
    services = _compose()["services"]
    variables = set(anchor)
    for service in services.values():
        environment = service.get("environment") or {}
        if isinstance(environment, dict):
            variables.update(environment)
    printsync = {name for name in variables if name.startswith("PRINTSYNC_")}
    assert printsync, "compose sets no PRINTSYNC_ variables"
    assert printsync <= known, printsync - known


def test_compose_mounted_files_exist() -> None:
    for service in _compose()["services"].values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    prometheus = yaml.safe_load((ROOT / "metrics/prometheus/prometheus.yml").read_text())
    targets = {
        t
        for job in prometheus["scrape_configs"]
        for c in job["static_configs"]
        for t in c["targets"]
    }
    assert targets == {"api:8000", "worker:9300"}


CADDYFILE = ROOT / "deploy" / "Caddyfile"


def test_compose_puts_a_tls_proxy_in_front_of_the_api_replicas() -> None:
    services = _compose()["services"]
    proxy = services["proxy"]
    assert str(proxy["image"]).startswith("caddy:")  # the official image
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert "443:443" in proxy["ports"]
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    # The replicas are reached through the proxy only.
    assert "ports" not in services["api"]
    assert "8000" in services["api"]["expose"]
    public_url = _compose()["x-printsync-env"]["PRINTSYNC_PUBLIC_URL"]
    assert public_url.startswith("https://${DOMAIN")


def test_caddyfile_names_the_replicas_with_timeouts_and_limits() -> None:
    text = CADDYFILE.read_text()
    assert re.search(r"dynamic a \{\s*name api\s*port 8000", text), "the api replicas"
    for directive in ("read_header", "read_body", "idle", "max_conns_per_host", "max_size"):
        assert re.search(rf"^\s*{directive}\s+\S+", text, re.MULTILINE), directive
    assert re.search(r"protocols tls1\.2 tls1\.3", text)
    # The proxy reuses a connection for less time than the API keeps it open.
    proxy_keepalive = int(re.search(r"keepalive (\d+)s", text).group(1))  # type: ignore[union-attr]
    api_env = _compose()["services"]["api"]["environment"]
    assert proxy_keepalive < int(api_env["PRINTSYNC_KEEPALIVE_TIMEOUT_SECONDS"])


def test_caddyfile_is_valid_for_caddy(tmp_path: Path) -> None:
    caddy = shutil.which("caddy")
    require("caddy (Debian package caddy)", caddy is not None)
    assert caddy is not None
    for domain in ("localhost", "scim.example.com"):
        result = subprocess.run(
            [caddy, "validate", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
            env={**os.environ, "DOMAIN": domain, "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert "Valid configuration" in result.stdout + result.stderr
