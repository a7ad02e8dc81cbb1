"""Print systems as plug-ins.

- :mod:`workers.connectors.interface`: the :class:`Connector` protocol, the :class:`PrintAccount`
  it converges to, and :class:`~workers.connectors.interface.ConnectorPlugin`, how a connector
  module declares its name, configuration model and builder;
- :mod:`workers.connectors.registry`: the known plug-ins by name, the default one, and the
  :class:`~workers.connectors.registry.ConnectorRegistry` that builds and caches each tenant's
  connector from its stored configuration;
- one module per connector: :mod:`~workers.connectors.ledger` (the built-in print-account
  ledger) and :mod:`~workers.connectors.papercut` (PaperCut NG/MF over XML-RPC).

``docs/extending.md`` lists what adding a connector takes.
"""

from workers.connectors.interface import Connector, PrintAccount

__all__ = ["Connector", "PrintAccount"]
