"""The options of ``printsync tenant create`` and ``tenant update`` that choose a tenant's
connector and fill in its configuration.

``--connector`` offers every connector of the registry (``workers.connectors.registry``), the
default one first. Each :class:`ConnectorOption` fills one field of one connector's configuration
model; the values given for the chosen connector are validated by its plug-in, so that a tenant is
never stored with a configuration its worker would refuse. A refusal is one line that names the
option.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from workers.connectors.interface import InvalidConfig
from workers.connectors.registry import DEFAULT_CONNECTOR, PLUGINS

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class ConnectorOption:
    """``--option VALUE`` sets ``field`` of the configuration of ``connector``."""

    connector: str
    field: str
    option: str
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def parameter(self) -> str:
        """The name click passes the value under (``--papercut-url`` -> ``papercut_url``)."""
        return self.option.lstrip("-").replace("-", "_")


#: Every option of ``tenant create`` that fills in a connector's configuration.
OPTIONS: tuple[ConnectorOption, ...] = (
    ConnectorOption("papercut", "url", "--papercut-url", "PaperCut server, e.g. http://host:9191."),
    ConnectorOption(
        "papercut",
        "token_env",
        "--papercut-token-env",
        "Name of the environment variable holding the PaperCut auth token.",
    ),
    ConnectorOption(
        "papercut",
        "username",
        "--papercut-username",
        "How a userName becomes a PaperCut username: its part before @ (local-part, the"
        " default) or all of it (upn), lower-cased.",
        choices=("local-part", "upn"),
    ),
    ConnectorOption(
        "papercut",
        "managed_group_prefix",
        "--papercut-managed-group-prefix",
        "Only PaperCut groups whose name starts with this are ever left by printsync"
        " (default: every group but the built-in ones).",
    ),
)


def options(command: F) -> F:
    """Add ``--connector`` (default: the default connector) and every :data:`OPTIONS` entry to
    ``command``."""
    return _with_options(command, DEFAULT_CONNECTOR)


def update_options(command: F) -> F:
    """Add ``--connector`` (default: keep the tenant's) and every :data:`OPTIONS` entry."""
    return _with_options(command, None)


def _with_options(command: F, default: str | None) -> F:
    for entry in reversed(OPTIONS):
        kind = click.Choice(entry.choices) if entry.choices else None
        command = click.option(
            entry.option, entry.parameter, type=kind, default=None, help=entry.help
        )(command)
    names = [DEFAULT_CONNECTOR, *sorted(name for name in PLUGINS if name != DEFAULT_CONNECTOR)]
    return click.option(
        "--connector",
        type=click.Choice(names),
        default=default,
        show_default=default is not None,
        help=None if default is not None else "Another connector (its options start afresh).",
    )(command)


def config(connector: str, values: Mapping[str, str | None]) -> dict[str, Any]:
    """The configuration of ``connector`` from the option values (by click parameter name),
    validated by its plug-in, in the form to store. Options of other connectors are ignored.

    A required option left out is a usage error; a value the model refuses is a one-line error
    naming the option."""
    plugin = PLUGINS[connector]
    own = [entry for entry in OPTIONS if entry.connector == connector]
    missing = [
        entry.option
        for entry in own
        if values.get(entry.parameter) is None
        and plugin.config.model_fields[entry.field].is_required()
    ]
    if missing:
        raise click.UsageError(f"--connector {connector} needs {' and '.join(missing)}")
    return _validated(connector, _given(connector, values))


def updated(
    connector: str, stored: Mapping[str, Any], values: Mapping[str, str | None]
) -> dict[str, Any]:
    """The stored configuration of ``connector`` with the option values given on top,
    validated by its plug-in, in the form to store; a refused value is a one-line error naming
    the option."""
    return _validated(connector, {**stored, **_given(connector, values)})


def any_given(values: Mapping[str, Any]) -> bool:
    """Whether any connector option (of any connector) was given."""
    return any(values.get(entry.parameter) is not None for entry in OPTIONS)


def given(connector: str, values: Mapping[str, str | None]) -> bool:
    """Whether any option of ``connector`` was given."""
    return bool(_given(connector, values))


def _given(connector: str, values: Mapping[str, str | None]) -> dict[str, str]:
    return {
        entry.field: value
        for entry in OPTIONS
        if entry.connector == connector and (value := values.get(entry.parameter)) is not None
    }


def _validated(connector: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    plugin = PLUGINS[connector]
    own = [entry for entry in OPTIONS if entry.connector == connector]
    try:
        return plugin.dump(plugin.parse(raw))
    except InvalidConfig as error:
        by_field = {entry.field: entry.option for entry in own}
        named = [(by_field.get(field, field), message) for field, message in error.problems]
        reasons = [f"{name}: {message}" if name else message for name, message in named]
        raise click.ClickException(
            f"invalid {connector} configuration: {'; '.join(reasons)}"
        ) from None
