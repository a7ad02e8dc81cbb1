"""Failures of downstream work: the print system and outgoing mail.

The class of an error chooses what happens next, so connectors translate every
client-library exception into exactly one of these before it leaves them::

    DownstreamError                 base; never raised directly
    ├── TransientError              retry: connection refused or reset, timeouts,
    │                               XML-RPC ProtocolError, HTTP 5xx, SMTP 4xx
    └── PermanentError              do not retry: refusals, invalid data, HTTP 4xx,
        │                           SMTP 5xx; the effect is marked failed and
        │                           reported in the failure digest
        ├── AuthenticationError     bad auth token, caller not on the allow-list,
        │                           rejected SMTP credentials
        └── NotFoundError           the target of the operation does not exist

How callers use the tree:

- ``TransientError`` is retried, first by the connector itself (a few quick
  tries for idempotent calls) and then by the Dramatiq ``Retries`` middleware.
- ``PermanentError`` goes in the actors' ``throws``: retrying cannot help until
  someone fixes the data or the configuration.
- ``NotFoundError`` is a ``PermanentError`` because an operation that needs its
  target cannot succeed without it. Revoking access or deleting an account that
  the print system lacks is *not* an error, though: ``revoke_access`` and
  ``delete_account`` treat a missing user as done and return normally, and
  ``delete_group`` does the same for a missing group. On create, "already
  exists" turns into an update and is not an error either.

Messages never contain auth tokens, passwords, PINs or card numbers: they end up
in logs, in the outbox ``last_error`` column and in e-mails.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "DownstreamError",
    "NotFoundError",
    "PermanentError",
    "TransientError",
]


class DownstreamError(Exception):
    """A downstream operation failed; see the subclasses for what to do about it."""

    #: Value of the ``outcome`` label of ``printsync_downstream_operations_total``.
    outcome: str = "error"
    #: Whether retrying the same operation later may succeed.
    retryable: bool = False

    def __init__(
        self, message: str, *, operation: str | None = None, code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        #: The print system's own code for the failure (a PaperCut fault code), if it has one.
        self.code = code

    def __str__(self) -> str:
        if self.operation:
            return f"{self.operation}: {self.message}"
        return self.message


class TransientError(DownstreamError):
    """The print system or mail server is unreachable or overloaded; retry later."""

    outcome = "transient_error"
    retryable = True


class PermanentError(DownstreamError):
    """The request was refused; retrying the same request will fail the same way."""

    outcome = "permanent_error"


class AuthenticationError(PermanentError):
    """The credentials or the caller's address were rejected."""

    outcome = "auth_error"


class NotFoundError(PermanentError):
    """The user or group the operation needs does not exist downstream."""

    outcome = "not_found"
