"""Storage for threads: a synchronous facade over the async storage functions.

Dramatiq runs actors on plain threads, and the relay runs on its own thread. Each such thread gets
its own event loop and its own :class:`~storage.database.Database` (a SQLite connection, or an
asyncpg pool of one connection bound to that loop), created on first use;
:meth:`BlockingDatabase.run` runs one storage coroutine to completion on the calling thread's
loop::

    store = BlockingDatabase(url)
    effect = store.run(outbox.begin, effect_id, lease_seconds=60)
    store.run_in_transaction(outbox.complete, effect_id)  # functions taking a connection

Nothing is shared between threads, so there is no locking here and no hop to another thread: a
SQLite transaction still runs from BEGIN to COMMIT without yielding, and SQLite's own locking
(``BEGIN IMMEDIATE`` with a busy timeout) orders the writers of all threads and processes.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from asyncio import events as asyncio_events
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from storage.database import Connection, Database, in_transaction, open_database, parse_url
from storage.sql import Dialect

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(slots=True)
class _Slot:
    loop: asyncio.AbstractEventLoop
    db: Database
    thread: threading.Thread


class BlockingDatabase:
    """One database URL, opened once per calling thread."""

    def __init__(self, url: str, *, pool_size: int = 1, busy_timeout_ms: int = 5000) -> None:
        self.url = url
        self.dialect: Dialect = parse_url(url).dialect
        self._pool_size = pool_size
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._closed = False

    def run(
        self,
        function: Callable[Concatenate[Database, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``function(db, *args, **kwargs)`` on this thread's loop and database."""
        slot = self._slot()
        return _complete(slot, function(slot.db, *args, **kwargs))

    def run_in_transaction(
        self,
        function: Callable[Concatenate[Connection, Dialect, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``function(conn, dialect, *args, **kwargs)`` in one write transaction of this
        thread's database (see :func:`storage.database.in_transaction`)."""
        slot = self._slot()
        return _complete(slot, in_transaction(slot.db, function, *args, **kwargs))

    def database(self) -> Database:
        """This thread's database (for code that runs on this thread's loop)."""
        return self._slot().db

    def _slot(self) -> _Slot:
        if self._closed:
            raise RuntimeError("the database facade is closed")
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is not None:
            return slot
        loop = asyncio.new_event_loop()
        try:
            db = loop.run_until_complete(
                open_database(
                    self.url,
                    pool_size=self._pool_size,
                    busy_timeout_ms=self._busy_timeout_ms,
                    shared_loop=False,
                )
            )
        except BaseException:
            loop.close()
            raise
        slot = _Slot(loop, db, threading.current_thread())
        self._local.slot = slot
        with self._lock:
            self._slots.append(slot)
        return slot

    def close_thread(self) -> None:
        """Close the calling thread's database, if it has one (not from inside a running
        event loop)."""
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is None:
            return
        del self._local.slot
        with self._lock:
            self._slots.remove(slot)
        self._close(slot)

    def close(self) -> None:
        """Close every thread's database. Call it once the threads that used it have stopped.

        The closing runs on a thread of its own, so that it works from inside a running event
        loop as well."""
        with self._lock:
            self._closed = True
            slots, self._slots = self._slots, []
        idle = [slot for slot in slots if not slot.loop.is_running()]  # busy: owner exits anyway
        if not idle:
            return

        def close_idle() -> None:
            for slot in idle:
                self._close(slot)

        closer = threading.Thread(target=close_idle, name="database-closer")
        closer.start()
        closer.join()

    @staticmethod
    def _close(slot: _Slot) -> None:
        try:
            slot.loop.run_until_complete(slot.db.close())
        finally:
            slot.loop.close()


def _complete(slot: _Slot, coroutine: Awaitable[T]) -> T:
    """Run ``coroutine`` to its end on the slot's loop.

    SQLite's awaitables complete without suspending (``storage.database.sqlite``): such a
    coroutine is stepped here directly, as the running loop's, which spares the loop's task and
    turns (most of an effect's statements cost less than a turn). One that suspends all the
    same finishes on the loop, from where it stopped."""
    if slot.db.dialect != "sqlite" or not isinstance(coroutine, Coroutine):
        return slot.loop.run_until_complete(coroutine)
    steps = coroutine.__await__()
    asyncio_events._set_running_loop(slot.loop)
    try:
        # In a context of its own, as a task would run it.
        waiting = contextvars.copy_context().run(steps.send, None)
    except StopIteration as finished:
        return cast(T, finished.value)
    except BaseException:
        coroutine.close()
        raise
    finally:
        asyncio_events._set_running_loop(None)
    rest: T = slot.loop.run_until_complete(_Rest(steps, waiting).finish())
    return rest


class _Rest:
    """The rest of a coroutine that suspended on ``waiting`` outside the loop."""

    __slots__ = ("steps", "waiting")

    def __init__(self, steps: Generator[Any, Any, Any], waiting: Any) -> None:
        self.steps = steps
        self.waiting = waiting

    async def finish(self) -> Any:
        return await self

    def __await__(self) -> Generator[Any, Any, Any]:
        steps, waiting = self.steps, self.waiting
        while True:
            try:
                sent = yield waiting
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as error:
                try:
                    waiting = steps.throw(error)
                except StopIteration as finished:
                    return finished.value
            else:
                try:
                    waiting = steps.send(sent)
                except StopIteration as finished:
                    return finished.value
