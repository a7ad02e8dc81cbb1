"""A fake SMTP server for tests, built on aiosmtpd.

It listens on ``127.0.0.1`` on an explicit free port (aiosmtpd 1.4.6 cannot
bind port 0 itself), keeps every accepted message, and has switches to refuse
recipients, refuse the data, require a login, or stop listening to simulate an
outage. Use the ``smtp_server`` fixture; import it under its ``_fixture`` name
so that test parameters do not shadow the import::

    from tests.fakes.smtp import smtp_server_fixture  # noqa: F401
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Self

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.fakes import FakeServer

__all__ = [
    "FakeSmtpServer",
    "ReceivedMessage",
    "free_port",
    "smtp_server",
    "smtp_server_fixture",
]


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago: bind port 0, read the port, close."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message the fake accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    login: str | None


class _Handler:
    def __init__(self, fake: FakeSmtpServer) -> None:
        self._fake = fake

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self._fake.recipient_reply(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self._fake.data_reply
        if reply is not None:
            return reply
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        login_data = session.auth_data
        login = (
            login_data.login.decode("utf-8", "replace")
            if isinstance(login_data, LoginPassword)
            else None
        )
        self._fake.record(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=parsed,
                login=login,
            )
        )
        return "250 Message accepted for delivery"


class FakeSmtpServer(FakeServer):
    """An SMTP server on ``127.0.0.1:port`` that keeps what it receives.

    ``messages`` lists accepted messages in order. Switches:
    ``refuse_recipient(address, reply)`` answers RCPT for that address with
    ``reply`` (a 550 by default); ``data_reply`` answers DATA with a fixed
    reply instead of accepting; ``credentials`` makes AUTH accept only that
    login and password; ``stop()`` closes the port (connections are refused)
    and ``start()`` listens on the same port again.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.messages: list[ReceivedMessage] = []
        self.data_reply: str | None = None
        self.credentials: tuple[str, str] | None = None
        self._refused: dict[str, str] = {}
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> Self:
        if self._controller is not None:
            raise RuntimeError("the fake SMTP server is already running")
        controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            server_hostname="fake-smtp.test",
            authenticator=self._authenticate,
            auth_require_tls=False,
            ready_timeout=5.0,
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuse_recipient(self, address: str, reply: str = "550 5.1.1 Mailbox unavailable") -> None:
        with self._lock:
            self._refused[address.lower()] = reply

    def recipient_reply(self, address: str) -> str | None:
        with self._lock:
            return self._refused.get(address.lower())

    def record(self, received: ReceivedMessage) -> None:
        with self._lock:
            self.messages.append(received)

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        expected = self.credentials
        if expected is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        if (login, password) != expected:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data)


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[FakeSmtpServer]:
    """A running fake SMTP server on a free loopback port."""
    with FakeSmtpServer() as server:
        yield server


# The fixture under its own name too, for ``from ... import smtp_server``.
smtp_server = smtp_server_fixture
