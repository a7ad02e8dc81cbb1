"""``printsync tenant create``'s connector options: the configuration is built and validated by
the connector's plug-in before anything is stored."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from printsync import connector_options
from printsync.cli import cli
from tests.builders import papercut_tenant


def test_tenant_create_bad_papercut_url_prints_one_line_naming_option() -> None:
    result = CliRunner().invoke(
        cli, papercut_tenant("acme", "ftp://papercut:9191", "PAPERCUT_TOKEN")
    )

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a refusal, not a traceback
    assert result.output.splitlines() == [
        "Error: invalid papercut configuration: --papercut-url: "
        "the PaperCut URL must be an http:// or https:// URL with a host"
    ]


def test_tenant_create_unknown_connector_is_refused_listing_known_ones() -> None:
    result = CliRunner().invoke(cli, ["tenant", "create", "acme", "--connector", "fax"])

    assert result.exit_code == 2
    assert "'fax' is not one of 'ledger', 'papercut'" in result.output


def test_tenant_create_papercut_without_token_variable_names_missing_option() -> None:
    result = CliRunner().invoke(
        cli,
        ["tenant", "create", "acme", "--connector", "papercut", "--papercut-url", "http://pc"],
    )

    assert result.exit_code == 2
    assert "--connector papercut needs --papercut-token-env" in result.output


def test_config_papercut_options_give_the_stored_form() -> None:
    values = {"papercut_url": "http://pc:9191", "papercut_token_env": "PAPERCUT_TOKEN"}

    assert connector_options.config("papercut", values) == {
        "url": "http://pc:9191",
        "token_env": "PAPERCUT_TOKEN",
    }


def test_config_ledger_ignores_papercut_options() -> None:
    assert connector_options.config("ledger", {"papercut_url": "ftp://ignored"}) == {}


def test_config_empty_token_variable_is_one_line_error() -> None:
    values = {"papercut_url": "http://pc:9191", "papercut_token_env": ""}

    with pytest.raises(click.ClickException) as raised:
        connector_options.config("papercut", values)

    assert raised.value.message.startswith("invalid papercut configuration: --papercut-token-env: ")
    assert "\n" not in raised.value.message
