"""The ledger service: one writer thread, group commit, periodic checkpoints.

This is an adapter (threads and a clock); the decisions about what to write live in
:mod:`aegisflow.ledger.sequencer`. Callers on any thread :meth:`Ledger.submit` requests;
the writer drains everything queued into one batch, builds it, makes it durable with
one :meth:`Storage.journal`, and only then resolves the callers' futures; it writes the
batch to the repository (:meth:`Storage.write`) before it takes the next one. So an
append returns only after its entry is durable, and concurrent appends share one sync.

A failed write stops the writer (fail closed): every pending and later request fails
with :class:`LedgerUnavailable` until the ledger is reopened, which recovers the state
from the repository.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aegisflow.errors import AegisError, LedgerUnavailable, OperationalError
from aegisflow.keys import PublicKey, Signer
from aegisflow.ledger.checkpoint import Checkpoint
from aegisflow.ledger.entry import (
    canonical_body,
    validate_origin,
    validate_session_id,
    validate_type,
)
from aegisflow.ledger.reading import session_history
from aegisflow.ledger.recovery import recover
from aegisflow.ledger.sequencer import BatchBuilder, Head, LedgerState, Receipt, build_genesis
from aegisflow.ledger.storage import Storage

log = logging.getLogger("aegisflow.ledger")

Clock = Callable[[], datetime]

DEFAULT_CHECKPOINT_INTERVAL = 2.0
MAX_BATCH = 2048
MAX_PENDING = 65536


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Append:
    session: str
    kind: str
    body: bytes
    parsed: Mapping[str, Any]
    future: Future[Receipt]


@dataclass(slots=True)
class _Manifest:
    session: str
    final: bool
    future: Future[Receipt]


@dataclass(slots=True)
class _Checkpoint:
    future: Future[Checkpoint]


_Request = _Append | _Manifest | _Checkpoint


class Ledger:
    """An open evidence ledger with its single writer thread.

    Use :meth:`create` for a new repository and :meth:`open` for an existing one; close
    with :meth:`close` (or use as a context manager), which writes a final checkpoint.
    """

    def __init__(
        self,
        storage: Storage,
        signer: Signer,
        *,
        clock: Clock = utc_now,
        checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
        _state: LedgerState,
    ) -> None:
        self._storage = storage
        self._signer = signer
        self._clock = clock
        self._interval = checkpoint_interval
        self._state = _state
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._failure: BaseException | None = None
        self._last_checkpoint = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="aegisflow-ledger", daemon=True)
        self._thread.start()

    # -- construction -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        storage: Storage,
        signer: Signer,
        *,
        origin: str,
        clock: Clock = utc_now,
        checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
    ) -> Ledger:
        """Write the genesis of a new ledger into empty ``storage`` and open it.

        Raises:
            InvalidEntry: If ``origin`` is not a valid origin.
            OperationalError: If the storage already holds refs or the write fails.
        """
        validate_origin(origin)
        if storage.refs():
            raise OperationalError("refusing to create a ledger in a non-empty repository")
        objects, refs, state = build_genesis(origin, signer, clock())
        storage.write(objects, refs)
        return cls(
            storage, signer, clock=clock, checkpoint_interval=checkpoint_interval, _state=state
        )

    @classmethod
    def open(
        cls,
        storage: Storage,
        signer: Signer,
        *,
        clock: Clock = utc_now,
        checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
    ) -> Ledger:
        """Open an existing ledger, recovering its state from the repository.

        Entries of a batch that was interrupted before it was acknowledged are dropped
        (their refs rewound); acknowledged entries not yet under a checkpoint get one.

        Raises:
            NotALedger: If ``storage`` holds no ledger.
            IntegrityError: If the stored state does not verify with ``signer``'s key.
        """
        recovery = recover(storage, signer.public_key)
        if recovery.ref_fixes:
            log.warning(
                "discarding %d unacknowledged entries of an interrupted batch",
                recovery.discarded,
            )
            storage.write([], recovery.ref_fixes)
        ledger = cls(
            storage,
            signer,
            clock=clock,
            checkpoint_interval=checkpoint_interval,
            _state=recovery.state,
        )
        if recovery.state.uncovered:
            ledger.checkpoint()
        return ledger

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- properties ---------------------------------------------------------------

    @property
    def origin(self) -> str:
        return self._state.origin

    @property
    def public_key(self) -> PublicKey:
        return self._signer.public_key

    @property
    def size(self) -> int:
        """Entries durably appended so far."""
        return self._state.size

    @property
    def uncovered(self) -> int:
        """Entries not yet under a signed checkpoint."""
        return self._state.uncovered

    def head(self, session: str) -> Head | None:
        return self._state.heads.get(session)

    def heads(self) -> dict[str, Head]:
        """The newest entry of every session (a snapshot)."""
        return dict(self._state.heads)

    @property
    def storage(self) -> Storage:
        return self._storage

    # -- requests -----------------------------------------------------------------

    def _enqueue(self, request: _Request) -> None:
        with self._cond:
            if self._failure is not None:
                raise LedgerUnavailable(
                    "the ledger writer stopped after a failed write",
                    hint="restart the service; reopening recovers the ledger",
                ) from self._failure
            if self._stopping:
                raise LedgerUnavailable("the ledger is closed")
            if len(self._queue) >= MAX_PENDING:
                raise OperationalError(f"ledger overloaded: {MAX_PENDING} appends pending")
            # A queued request is written whether or not its caller still waits: a caller
            # that gives up (a cancelled task) must not cancel the future under the writer,
            # whose set_result would then raise and stop it.
            request.future.set_running_or_notify_cancel()
            self._queue.append(request)
            self._cond.notify()

    def submit(self, session: str, kind: str, body: Mapping[str, Any]) -> Future[Receipt]:
        """Queue an entry; the future resolves once it is durable.

        Input is validated here, in the caller's thread, before anything is queued.
        Callbacks added to the future run in the writer's thread as soon as the entry is
        durable, before its batch is in the repository: they must not read the storage
        (``asyncio.wrap_future``, which ``append_async`` uses, only schedules a wake-up).

        Raises:
            InvalidSessionId: If ``session`` is not a safe session id.
            InvalidEntry: If ``kind`` or ``body`` is invalid.
            EntryTooLarge: If the body exceeds the size limit.
            LedgerUnavailable: If the ledger is closed or failed.
        """
        validate_session_id(session)
        validate_type(kind)
        if kind == "manifest":
            raise OperationalError("manifests are written by close_session, not appended")
        data = canonical_body(body)
        future: Future[Receipt] = Future()
        self._enqueue(_Append(session, kind, data, body, future))
        return future

    def append(
        self, session: str, kind: str, body: Mapping[str, Any], *, timeout: float | None = None
    ) -> Receipt:
        """Append an entry and wait until it is durable. See :meth:`submit`."""
        return self.submit(session, kind, body).result(timeout)

    async def append_async(self, session: str, kind: str, body: Mapping[str, Any]) -> Receipt:
        """Asyncio form of :meth:`append`."""
        return await asyncio.wrap_future(self.submit(session, kind, body))

    def close_session(
        self, session: str, *, final: bool = True, timeout: float | None = None
    ) -> Receipt:
        """Write a signed session manifest (and the checkpoints around it).

        Raises:
            InvalidSessionId: If ``session`` is not a safe session id.
            SessionClosed: If the session has no entries or is already closed.
        """
        validate_session_id(session)
        future: Future[Receipt] = Future()
        self._enqueue(_Manifest(session, final, future))
        return future.result(timeout)

    def checkpoint(self, *, timeout: float | None = None) -> Checkpoint:
        """Write a signed checkpoint over every entry so far and return it."""
        future: Future[Checkpoint] = Future()
        self._enqueue(_Checkpoint(future))
        return future.result(timeout)

    def close(self) -> None:
        """Drain pending requests, write a final checkpoint and stop the writer."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify()
        self._thread.join()
        self._storage.close()

    # -- the writer ---------------------------------------------------------------

    def _checkpoint_due(self) -> float | None:
        """Seconds until a checkpoint is due (<= 0: now), or None if none is needed."""
        if not self._state.uncovered:
            return None
        return self._interval - (time.monotonic() - self._last_checkpoint)

    def _take(self) -> list[_Request] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                due = self._checkpoint_due()
                if due is not None and due <= 0:
                    break
                self._cond.wait(timeout=due)
            if not self._queue and self._stopping and not self._state.uncovered:
                return None
            batch: list[_Request] = []
            while self._queue and len(batch) < MAX_BATCH:
                batch.append(self._queue.popleft())
            return batch

    def _drain(self, limit: int) -> list[_Request]:
        with self._cond:
            taken: list[_Request] = []
            while self._queue and len(taken) < limit:
                taken.append(self._queue.popleft())
            return taken

    def _run(self) -> None:
        while True:
            requests = self._take()
            if requests is None:
                return
            try:
                self._write_batch(requests)
            except BaseException as e:  # any failure must stop the writer
                log.exception("ledger write failed; refusing further appends")
                self._fail(e, requests)
                return

    def _fail(self, error: BaseException, requests: list[_Request]) -> None:
        with self._cond:
            self._failure = error
            pending = requests + list(self._queue)
            self._queue.clear()
        failure = LedgerUnavailable(f"ledger write failed: {error}")
        for request in pending:
            if not request.future.done():
                request.future.set_exception(failure)

    def _write_batch(self, requests: list[_Request]) -> None:
        builder = BatchBuilder(
            self._state,
            self._signer,
            self._clock(),
            lambda head: session_history(self._storage, head, self._state.genesis_commit),
        )
        outcomes: list[tuple[Future[Any], Any, AegisError | None]] = []
        pending = deque(requests)
        while pending:
            request = pending.popleft()
            if not pending and len(outcomes) < MAX_BATCH:
                # Requests that arrived while this batch was being built share its fsync.
                # They join ``requests`` too, so a failed write fails them as well.
                more = self._drain(MAX_BATCH - len(outcomes) - 1)
                requests.extend(more)
                pending.extend(more)
            try:
                if isinstance(request, _Append):
                    result: Any = builder.append(
                        request.session, request.kind, request.body, request.parsed
                    )
                elif isinstance(request, _Manifest):
                    result = builder.manifest(request.session, final=request.final)
                else:
                    result = builder.checkpoint()
                outcomes.append((request.future, result, None))
            except AegisError as e:
                outcomes.append((request.future, None, e))
        due = self._checkpoint_due()
        if builder.uncovered and (self._stopping or (due is not None and due <= 0)):
            builder.checkpoint()
        refs = builder.ref_updates()
        changed = bool(builder.objects or refs)
        if changed:
            self._storage.journal(builder.objects, refs)
        try:
            builder.apply()
            if builder.wrote_checkpoint:
                self._last_checkpoint = time.monotonic()
            for future, result, error in outcomes:
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result)
        finally:
            # Durable since the journal; the repository catches up before the next batch.
            if changed:
                self._storage.write(builder.objects, refs)
