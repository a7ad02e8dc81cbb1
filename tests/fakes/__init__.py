"""Fake downstream servers (PaperCut, SMTP) that tests run for the span of a ``with`` block."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class FakeServer(ABC):
    """A fake server: ``start()`` listens and returns it, ``stop()`` stops listening, and a
    ``with`` block does both around its body."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
