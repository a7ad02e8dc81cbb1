"""What the CLI prints for people: one table printer (header, aligned columns, colours and cuts
only on a terminal), the provisioning log in words, effects with their users, progress lines."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import click
import orjson
import pytest
from click.testing import CliRunner

from printsync.terminal import Column, Progress, Styled, Terminal, table
from tests.api.test_users import entra_user
from tests.builders import patch_body
from tests.harness import printsync
from tests.workers.test_pipeline import Site, set_active, settings
from tests.workers.test_pipeline import make_site as make_site
from tests.workers.test_pipeline import probe as probe

COLUMNS = (Column("NAME"), Column("N", ">"), Column("NOTE", shrink=True, min_width=6))


def printed(terminal: Terminal, rows: list[tuple[Any, ...]]) -> str:
    runner = CliRunner()

    def show() -> None:
        table(rows, COLUMNS, terminal=terminal, empty="nothing here")

    result = runner.invoke(click.command()(show), color=terminal.colour)
    assert result.exit_code == 0, result.output
    return result.output


def test_table_prints_header_and_aligned_columns_without_colour_off_a_terminal() -> None:
    rows = [("ada", 3, Styled("fine", "green")), ("bartholomew", 12, "a much longer note")]
    out = printed(Terminal(is_tty=False, width=20, colour=False), rows)
    assert out.splitlines() == [
        "NAME          N  NOTE",
        "ada           3  fine",
        "bartholomew  12  a much longer note",
    ]
    assert "\x1b[" not in out


def test_table_on_a_narrow_terminal_cuts_the_shrinkable_column_and_colours() -> None:
    rows = [("ada", 3, Styled("a much longer note", "red"))]
    out = printed(Terminal(is_tty=True, width=24, colour=True), rows)
    lines = out.splitlines()
    assert "\x1b[1m" in lines[0]  # a bold header
    assert "\x1b[31m" in lines[1]  # the red cell
    plain = [click.unstyle(line) for line in lines]
    assert plain[1] == "ada   3  a much longer…"
    assert all(len(line) <= 24 for line in plain)


def test_table_with_no_rows_says_so() -> None:
    assert printed(Terminal(False, 80, False), []) == "nothing here\n"


def test_progress_draws_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown = Tty()
    with Progress("retrying", 4, stream=shown) as progress:
        progress.advance(2)
        progress.advance(2)
    assert "retrying" in shown.getvalue() and "4/4" in shown.getvalue()
    quiet = io.StringIO()
    with Progress("retrying", 4, stream=quiet) as progress:
        progress.advance(4)
    assert quiet.getvalue() == ""


def invoke(site: Site, args: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    result = printsync(site.url, args, monkeypatch)
    assert result.exit_code == 0, result.output
    return result


def test_log_names_the_user_and_what_changed_with_group_changes_in_utc(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(settings())
    client, tenant_id = site.tenant()
    ada = client.post("/Users", json=entra_user("adele.vance@contoso.com")).json()["id"]
    site.wait_settled(tenant_id)
    assert client.patch(f"/Users/{ada}", json=set_active(False)).status_code == 200
    group = client.post(
        "/Groups",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales"},
    ).json()["id"]
    add = patch_body({"op": "add", "path": "members", "value": [{"value": ada}]})
    assert client.patch(f"/Groups/{group}", json=add).status_code == 204
    site.wait_settled(tenant_id)
    site.http.__exit__(None, None, None)  # the app's buffered log entries are written

    out = invoke(site, ["log", "--user", "adele.vance@contoso.com"], monkeypatch).output
    lines = out.splitlines()
    assert lines[0].split() == [
        "TIME",
        "(UTC)",
        "USER",
        "OR",
        "GROUP",
        "WHAT",
        "HAPPENED",
        "RESULT",
    ]
    assert ada not in out  # named by userName, not by id
    assert "disabled (active: true -> false)" in out
    assert "added to group Sales" in out
    assert "print account created" in out
    assert "access revoked (inactive in Entra)" in out
    assert "created" in lines[-1] and "ok 201" in lines[-1]

    entries = orjson.loads(invoke(site, ["log", "--user", ada, "--json"], monkeypatch).output)
    assert {
        "time",
        "tenant_id",
        "source",
        "operation",
        "result",
        "target_id",
        "target_name",
        "status",
        "error",
        "id",
        "tenant",
    } <= set(entries[0])


def test_effects_list_shows_user_names_and_labelled_attempts(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(None)  # no pipeline: the effects wait
    client, _ = site.tenant()
    client.post("/Users", json=entra_user("ada@contoso.com"))
    out = invoke(site, ["effects", "list", "--tenant", client.name], monkeypatch).output
    header, row = out.splitlines()
    assert header.split() == [
        "ID",
        "STATE",
        "KIND",
        "USER",
        "OR",
        "GROUP",
        "FAILED",
        "ATTEMPTS",
        "UPDATED",
        "(UTC)",
        "LAST",
        "ERROR",
    ]
    assert "ada@contoso.com" in row and "none" in row and "pending" in row
    rows = orjson.loads(
        invoke(site, ["effects", "list", "--tenant", client.name, "--json"], monkeypatch).output
    )
    assert rows[0]["attempts"] == 0 and rows[0]["kind"] == "account.sync"

    listed = invoke(site, ["tenant", "list"], monkeypatch).output.splitlines()
    assert listed[0].split() == ["NAME", "STATE", "CONNECTOR", "TENANT", "URL"]
    assert listed[1].split()[:3] == [client.name, "enabled", "ledger"]
    accounts = invoke(site, ["accounts", "list", "--tenant", client.name], monkeypatch).output
    assert accounts == "no accounts\n"


def test_table_on_a_very_narrow_terminal_leaves_out_optional_columns() -> None:
    columns = (
        Column("ID", ">"),
        Column("WHO", shrink=True, min_width=8),
        Column("WHEN (UTC)", optional=True),
        Column("ERROR", shrink=True, min_width=8),
    )
    rows = [(7, "adele.vance@contoso.com", "2026-12-07 18:39:54", "the print system refused")]
    runner = CliRunner()
    terminal = Terminal(is_tty=True, width=30, colour=False)
    result = runner.invoke(click.command()(lambda: table(rows, columns, terminal=terminal)))
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "WHO", "ERROR"]
    assert all(len(line) <= 30 for line in lines)
    assert lines[1].startswith(" 7  adele.vance@")
    wide = Terminal(is_tty=True, width=120, colour=False)
    result = runner.invoke(click.command()(lambda: table(rows, columns, terminal=wide)))
    assert "2026-12-07 18:39:54" in result.output


def test_tenant_status_shows_scheduled_purge_apart_from_pending_work(
    make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(settings(retention_days=30))
    client, tenant_id = site.tenant()
    ada = client.post("/Users", json=entra_user("ada@contoso.com")).json()["id"]
    site.wait_settled(tenant_id)
    assert client.delete(f"/Users/{ada}").status_code == 204
    site.wait_settled(tenant_id)
    pending = orjson.loads(
        invoke(
            site,
            ["effects", "list", "--tenant", client.name, "--state", "pending", "--json"],
            monkeypatch,
        ).output
    )
    assert [effect["kind"] for effect in pending] == ["account.purge"]

    out = invoke(site, ["tenant", "status", client.name], monkeypatch).output
    assert "Pending:  none" in out
    scheduled = [line for line in out.splitlines() if line.startswith("Scheduled:")]
    assert len(scheduled) == 1
    assert "1 account.purge effect, the next due" in scheduled[0]
    assert "(in 29 d 23 h)" in scheduled[0] or "(in 30 d)" in scheduled[0]
    data = orjson.loads(
        invoke(site, ["tenant", "status", client.name, "--json"], monkeypatch).output
    )
    assert data["numbers"]["oldest_pending_age_seconds"] is None
    assert [(item["kind"], item["count"]) for item in data["scheduled"]] == [("account.purge", 1)]
    assert data["scheduled"][0]["next_due_at"] > data["checked_at"]
