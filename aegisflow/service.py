"""The application service: evaluate, record, park, approve. HTTP, MCP and hooks call it.

This is where the contextual decisions live (who the actor is, whether an approval
applies, what is written to the ledger); the policy engine stays pure and the HTTP layer
only translates. Every decision is durable in the ledger before it is answered.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from aegisflow.approvals import (
    APPROVED_PREFIX,
    RETAIN,
    Approval,
    ApprovalError,
    ApprovalForbidden,
    ApprovalQueue,
    Principal,
    expires_at,
)
from aegisflow.credentials import Broker, Credential
from aegisflow.envelope import Actor, Envelope, InvalidAction
from aegisflow.errors import AegisError, InputError
from aegisflow.executor import Execution, failure
from aegisflow.ledger.entry import format_time, parse_time, validate_session_id
from aegisflow.ledger.ledger import Ledger, utc_now
from aegisflow.ledger.reading import entries_back_from, read_entry
from aegisflow.ledger.sequencer import Receipt
from aegisflow.ledger.storage import GENESIS_REF
from aegisflow.policy.engine import Decision, Policy, Verdict
from aegisflow.policy.normalize import action_envelopes
from aegisflow.policy.record import decision_body

Clock = Callable[[], datetime]
MAX_COMMENT = 2000
MAX_AWAITING = 10_000
"""Forwarded calls whose result the bridge may still report (the oldest are forgotten)."""
MAX_RESULT_BATCH = 256
"""Result reports in one ``POST /v1/results``."""
MAX_CALL_ID = 256
REFUSED_RULE = "approval-refused"

log = logging.getLogger("aegisflow.service")


class ResultUnexpected(InputError):
    reference = "result-unexpected"


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionOutcome:
    """What one call decided: the deciding envelope, its decision and its ledger entry."""

    envelope: Envelope
    decision: Decision
    evidence_hash: str
    queued_at: datetime | None = None
    refusal: str | None = None
    execution: Execution | None = None
    """What the service ran (or failed to): recorded as a ``result`` entry."""
    grant: Mapping[str, Any] | None = None
    """The credential used or delivered: type, scope, expiry, fingerprint."""
    token: str | None = field(default=None, repr=False)
    """The minted secret, only for a rule that delivers it to the caller."""
    parked: tuple[str, ...] = ()
    """The envelope ids queued for review by this call (every part that needs it)."""


class Executor(Protocol):
    """Carries out allowed actions (the GitHub executor is one)."""

    def can_run(self, envelope: Envelope) -> bool: ...

    async def run(self, envelope: Envelope, credential: Credential) -> tuple[dict[str, Any], str]:
        """The result of running ``envelope`` with ``credential``, and its summary."""
        ...


class Governance:
    """One policy, one ledger, one approval queue."""

    def __init__(
        self,
        *,
        policy: Policy,
        ledger: Ledger,
        clock: Clock = utc_now,
        executor: Executor | None = None,
        broker: Broker | None = None,
    ) -> None:
        self.policy = policy
        self.ledger = ledger
        self.clock = clock
        self.executor = executor
        self.broker = broker
        self.queue = ApprovalQueue()
        self.on_append: Callable[[float], None] | None = None
        """Called with the seconds each ledger append took (the gateway's metric)."""
        self.on_review: list[Callable[[Approval], None]] = []
        """Called with each approval queued (the Slack channel posts it); must not block."""
        self._active: dict[str, datetime] = {}
        """When each open session last had an entry: what idle close looks at."""
        self._awaiting: OrderedDict[str, Envelope] = OrderedDict()
        """Allowed calls the caller runs itself, by envelope id, until it reports the result."""
        self._calls: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        """The envelope id awaiting a result, by (principal, session, the caller's call id)."""
        self._lock = asyncio.Lock()

    def restore(self) -> int:
        """Rebuild the approval queue from the ledger; returns the entries read.

        Only the window an approval can still matter in is read: the policy's longest
        approval expiry plus :data:`~aegisflow.approvals.RETAIN`, walking each session
        back from its head. Older approvals have expired and been pruned from a running
        queue too, so start-up costs the same on a ledger of any age.
        """
        now = self.clock()
        horizon = now - timedelta(seconds=self.policy.max_approval_expiry) - RETAIN
        since = format_time(horizon)
        storage = self.ledger.storage
        genesis = storage.refs()[GENESIS_REF]
        entries: list[tuple[int, str, Mapping[str, Any]]] = []
        for session, head in self.ledger.heads().items():
            if not head.closed:
                self._active[session] = parse_time(head.time)
            if head.time < since:
                continue
            for stored in entries_back_from(storage, head.commit, genesis, since=since):
                entry = stored.entry
                entries.append((entry.index, entry.type, entry.body))
        entries.sort(key=lambda item: item[0])
        self.queue.replay((kind, body) for _, kind, body in entries)
        self.queue.prune(now)
        return len(entries)

    async def close_session(self, session: str, by: Principal | None = None) -> Receipt:
        """Write ``session``'s signed manifest; later actions in it are refused.

        ``by``, when given, must be an admin or the principal that acted in the session:
        one agent cannot end another's session.

        Raises:
            ApprovalForbidden: If ``by`` may not close this session.
            SessionClosed: If the session has no entries or is already closed.
        """
        loop = asyncio.get_running_loop()
        if by is not None and not by.has("admin"):
            owner = await loop.run_in_executor(None, self._session_principal, session)
            if owner is not None and owner != by.name:
                raise ApprovalForbidden(f"session {session} belongs to another principal")
        receipt = await loop.run_in_executor(None, self.ledger.close_session, session)
        self._active.pop(session, None)
        return receipt

    def _session_principal(self, session: str) -> str | None:
        """The principal of the newest decision in ``session`` (None if it has none)."""
        head = self.ledger.head(session)
        genesis = self.ledger.storage.refs().get(GENESIS_REF)
        oid = head.commit if head is not None else None
        while oid is not None and oid != genesis:
            stored = read_entry(self.ledger.storage, oid)
            envelope = stored.entry.body.get("envelope")
            if stored.entry.type == "decision" and isinstance(envelope, Mapping):
                actor = envelope.get("actor")
                return str(actor.get("principal")) if isinstance(actor, Mapping) else None
            oid = stored.commit.parents[0] if stored.commit.parents else None
        return None

    async def sweep(self, idle: timedelta | None) -> list[str]:
        """Prune settled approvals and close sessions idle for longer than ``idle``.

        A session with an approval still pending or waiting for its retry stays open, so
        idle close never strands an approved action. Returns the sessions closed.
        """
        now = self.clock()
        self.queue.prune(now)
        if idle is None:
            return []
        idle_since = now - idle
        closing = [
            session
            for session, last in self._active.items()
            if last <= idle_since and not self.queue.live(session, now)
        ]
        closed = []
        for session in closing:
            head = self.ledger.head(session)
            if head is None or head.closed:
                self._active.pop(session, None)
                continue
            try:
                await self.close_session(session)
            except AegisError as e:  # closed meanwhile by a request: nothing to do
                self._active.pop(session, None)
                log.info("idle close of %s skipped: %s", session, e.message)
                continue
            closed.append(session)
        return closed

    # -- actions --

    async def act(
        self, data: object, principal: Principal, *, session: str | None
    ) -> ActionOutcome:
        """Decide and record one call.

        Besides the action fields, the body may say ``"mode": "evaluate"`` (the caller
        runs the tool itself, as an agent hook does: nothing is minted or executed here)
        and name the call with ``call_id`` (the agent's own id for it), under which the
        caller later reports the result.

        Raises:
            InvalidAction: On a malformed action (nothing is recorded).
        """
        if not isinstance(data, Mapping):
            raise InvalidAction("the action must be a JSON object")
        actor = _actor(data.get("actor"), principal, session)
        mode = data.get("mode", "execute")
        if mode not in ("execute", "evaluate"):
            raise InvalidAction(
                "mode must be 'execute' (the default) or 'evaluate' (the caller runs the tool)"
            )
        call_id = _call_id(data.get("call_id"))
        body = {k: v for k, v in data.items() if k not in ("actor", "mode", "call_id")}
        envelopes = action_envelopes(body, actor=actor)
        now = self.clock()
        run = mode == "execute"
        if len(envelopes) == 1 and envelopes[0].approval_ref is not None:
            outcome = await self._retry(envelopes[0], now, run=run)
        else:
            outcome = await self._decide(self.policy.evaluate_all(envelopes), now, run=run)
        if call_id is not None and outcome.envelope.envelope_id in self._awaiting:
            self._calls[(principal.name, outcome.envelope.session, call_id)] = (
                outcome.envelope.envelope_id
            )
            while len(self._calls) > MAX_AWAITING:
                self._calls.popitem(last=False)
        return outcome

    async def _decide(self, verdict: Verdict, now: datetime, *, run: bool) -> ActionOutcome:
        """Record the decisions of one call; the strictest stands.

        A call that asks for review again after a human approved each reviewed part (the
        same call in the same session, under the same policy) is allowed once: the
        approvals are consumed together, or none is.
        """
        items = list(verdict.items)
        deciding, decision = verdict.deciding
        if decision.decision == "review":
            async with self._lock:
                resumed = self._resume(items, now)
            if resumed is not None:
                items = resumed
                deciding, decision = next(
                    item for item in items if item[1].matched_rule.startswith(APPROVED_PREFIX)
                )
        if len(items) == 1 and decision.decision == "allow":
            return await self._allow(deciding, decision, now, run=run)
        receipts = await asyncio.gather(*(self._record(e, d, now) for e, d in items))
        index = next(k for k, (e, _) in enumerate(items) if e.envelope_id == deciding.envelope_id)
        queued_at: datetime | None = None
        parked: tuple[str, ...] = ()
        if decision.decision == "review":
            parked = tuple(e.envelope_id for e, d in items if d.decision == "review")
            for envelope, reviewed in items:
                if reviewed.decision == "review":
                    approval = self.queue.park(envelope, reviewed, now)
                    for listener in self.on_review:
                        listener(approval)
            queued_at = now
        elif decision.decision == "allow":
            self._await_result(deciding)
        return ActionOutcome(
            envelope=deciding,
            decision=decision,
            evidence_hash=receipts[index],
            queued_at=queued_at,
            parked=parked,
        )

    def _resume(
        self, items: list[tuple[Envelope, Decision]], now: datetime
    ) -> list[tuple[Envelope, Decision]] | None:
        """``items`` with every review replaced by its human approval, consumed; or None.

        The envelopes that were approved come back with ``approval_ref`` naming the
        approval they use, as a retry that named it would carry (it is recorded, and is
        not part of the action digest).
        """
        if any(d.decision == "block" for _, d in items):
            return None
        found: list[tuple[int, Approval]] = []
        for k, (envelope, decision) in enumerate(items):
            if decision.decision != "review":
                continue
            approval = self.queue.approved_for(
                envelope,
                now,
                policy_hash=self.policy.content_hash,
                taken={a.approval_id for _, a in found},
            )
            if approval is None:
                return None
            found.append((k, approval))
        resumed = list(items)
        for k, approval in found:
            envelope, reviewed = items[k]
            self.queue.consume(approval.approval_id)
            resumed[k] = (
                replace(envelope, approval_ref=approval.approval_id),
                self._approved(approval, reviewed),
            )
        return resumed

    def _approved(self, approval: Approval, reviewed: Decision) -> Decision:
        return Decision(
            decision="allow",
            matched_rule=APPROVED_PREFIX + approval.approval_id,
            reason=f"approved by {approval.reviewer}",
            policy=self.policy.name,
            policy_hash=self.policy.content_hash,
            credential=reviewed.credential,
        )

    async def _retry(self, envelope: Envelope, now: datetime, *, run: bool) -> ActionOutcome:
        ref = envelope.approval_ref or ""
        async with self._lock:  # single use: check and consume without interleaving
            try:
                approval = self.queue.check_retry(
                    ref, envelope, now, policy_hash=self.policy.content_hash
                )
            except (ApprovalError, InputError) as e:
                refused = Decision(
                    decision="block",
                    matched_rule=REFUSED_RULE,
                    reason=e.message,
                    policy=self.policy.name,
                    policy_hash=self.policy.content_hash,
                )
                evidence = await self._record(envelope, refused, now)
                return ActionOutcome(
                    envelope=envelope, decision=refused, evidence_hash=evidence, refusal=e.message
                )
            allowed = self._approved(approval, self.policy.evaluate(envelope))
            self.queue.consume(approval.approval_id)
            return await self._allow(envelope, allowed, now, run=run)

    async def _allow(
        self, envelope: Envelope, decision: Decision, now: datetime, *, run: bool
    ) -> ActionOutcome:
        """Record an allow; mint what the rule names and run it when an executor can.

        The credential is minted first so the decision entry records its grant (type,
        scope, expiry, fingerprint); a failed mint or call is recorded as the result. A
        rule that delivers to the caller gets the token in the answer instead, and the
        caller (the MCP bridge) runs the action. Without ``run`` (evaluate-only: the
        caller runs the tool with its own means) nothing is minted or executed.
        """
        spec, executor = decision.credential, self.executor
        delivered = spec is not None and spec.deliver == "caller"
        runnable = executor is not None and executor.can_run(envelope)
        if not run or spec is None or self.broker is None or not (delivered or runnable):
            # Forwarded by the caller (the MCP bridge) without a credential of ours.
            evidence = await self._record(envelope, decision, now)
            self._await_result(envelope)
            return ActionOutcome(envelope=envelope, decision=decision, evidence_hash=evidence)
        credential: Credential | None = None
        execution: Execution | None = None
        try:
            credential = await self.broker.mint(spec, envelope.target, now=now)
            if not delivered and executor is not None:
                result, summary = await executor.run(envelope, credential)
                execution = Execution(credential.grant(now), result, summary)
        except AegisError as e:
            execution = failure(e, credential.grant(now) if credential else None)
        grant = execution.grant if execution else credential.grant(now) if credential else None
        evidence = await self._record(envelope, decision, now, grant=grant)
        if execution is not None:
            await self._append(
                envelope.session,
                "result",
                {
                    "envelope_id": envelope.envelope_id,
                    "tool": envelope.tool,
                    "summary": execution.summary,
                    "result_sha256": execution.result_sha256,
                },
            )
        if execution is None:
            self._await_result(envelope)
        return ActionOutcome(
            envelope=envelope,
            decision=decision,
            evidence_hash=evidence,
            execution=execution,
            grant=grant,
            token=credential.secret if delivered and credential and execution is None else None,
        )

    def _await_result(self, envelope: Envelope) -> None:
        self._awaiting[envelope.envelope_id] = envelope
        while len(self._awaiting) > MAX_AWAITING:
            self._awaiting.popitem(last=False)

    def called(self, call_id: str, principal: Principal, session: str) -> str:
        """The envelope id of the allowed call the caller named ``call_id`` in ``session``.

        Raises:
            ResultUnexpected: If no such call of this principal awaits a result.
        """
        envelope_id = self._calls.get((principal.name, session, call_id))
        if envelope_id is None:
            raise ResultUnexpected(
                f"no allowed call {call_id!r} of yours in {session} awaits a result"
            )
        return envelope_id

    async def record_result(
        self, envelope_id: str, principal: Principal, data: Mapping[str, Any]
    ) -> str:
        """Record what the caller's own run of an allowed call produced; returns its hash.

        Only a digest, a size and a short summary are kept: results can be large, binary
        or sensitive, and the ledger is forever.

        Raises:
            InputError: On a malformed report.
            ResultUnexpected: If no allowed call of this principal awaits that result.
        """
        unknown = set(data) - {"summary", "result_sha256", "size", "is_error"}
        if unknown:
            raise InputError(f"unknown result fields: {', '.join(sorted(map(str, unknown)))}")
        summary, digest = data.get("summary"), data.get("result_sha256")
        size, is_error = data.get("size", 0), data.get("is_error", False)
        if not isinstance(summary, str) or not 0 < len(summary) <= 200 or not summary.isprintable():
            raise InputError("summary must be a printable string of 1-200 characters")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise InputError("result_sha256 must be 64 lower-case hex digits")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 2**53:
            raise InputError("size must be a non-negative integer")
        if not isinstance(is_error, bool):
            raise InputError("is_error must be true or false")
        envelope = self._awaiting.get(envelope_id)
        if envelope is None or envelope.actor.principal != principal.name:
            raise ResultUnexpected(f"no allowed call {envelope_id} of yours awaits a result")
        del self._awaiting[envelope_id]
        body = {
            "envelope_id": envelope_id,
            "tool": envelope.tool,
            "summary": summary,
            "result_sha256": digest,
            "size": size,
            "is_error": is_error,
        }
        receipt = await self._append(envelope.session, "result", body)
        return receipt.entry_hash

    async def _record(
        self,
        envelope: Envelope,
        decision: Decision,
        now: datetime,
        *,
        grant: Mapping[str, Any] | None = None,
    ) -> str:
        body = decision_body(envelope, decision)
        if grant is not None:
            body["credential"] = dict(grant)
        if decision.decision == "review":
            body["queued_at"] = format_time(now)
            body["expires_at"] = format_time(expires_at(decision, now))
            body["approvers"] = list(decision.approvers)
        receipt = await self._append(envelope.session, "decision", body)
        return receipt.entry_hash

    async def _append(self, session: str, kind: str, body: Mapping[str, Any]) -> Receipt:
        started = time.perf_counter()
        receipt = await self.ledger.append_async(session, kind, body)
        if self.on_append is not None:
            self.on_append(time.perf_counter() - started)
        self._active[session] = self.clock()
        return receipt

    # -- approvals --

    async def decide(
        self,
        approval_id: str,
        principal: Principal,
        *,
        approved: bool,
        comment: str | None,
        reviewer: str | None = None,
    ) -> tuple[Approval, str]:
        """Approve or deny; the reviewer recorded is the authenticated principal.

        Raises:
            UnknownApproval, ApprovalForbidden, ApprovalError: As the queue decides.
            ApprovalForbidden: Also if ``reviewer`` names someone other than the caller.
        """
        if reviewer is not None and reviewer != principal.name:
            raise ApprovalForbidden(
                f"reviewer {reviewer!r} is not the authenticated principal {principal.name!r}",
                hint="use the API key of the person approving",
            )
        if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
            raise InputError(f"comment must be a string of at most {MAX_COMMENT} characters")
        async with self._lock:
            now = self.clock()
            approval = self.queue.check_decider(approval_id, principal, now)
            body: dict[str, Any] = {
                "envelope_id": approval.approval_id,
                "tool": approval.envelope.tool,
                "target": approval.envelope.target,
                "action_digest": approval.action_digest,
                "policy_hash": approval.policy_hash,
                "reviewer": principal.name,
                "decided_at": format_time(now),
            }
            if comment:
                body["comment"] = comment
            kind = "approval" if approved else "denial"
            receipt = await self._append(approval.envelope.session, kind, body)
            decided = self.queue.decide(
                approval_id, approved=approved, reviewer=principal.name, comment=comment, now=now
            )
        return decided, receipt.entry_hash


def _call_id(value: object) -> str | None:
    """The caller's own id for a call (an agent's tool-use id): printable, bounded.

    Raises:
        InvalidAction: If it is not a short printable string.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_CALL_ID or not value.isprintable():
        raise InvalidAction(f"call_id must be a printable string of 1-{MAX_CALL_ID} characters")
    return value


def _actor(given: object, principal: Principal, session: str | None) -> Actor:
    """The actor of a call: agent and session from the body or headers, principal from the key.

    Raises:
        InvalidAction: On unknown actor fields, or a body session that differs from the
            header's.
        InvalidSessionId: On a malformed session id.
    """
    agent, chosen = principal.name, session
    if isinstance(given, Mapping):
        unknown = set(given) - {"agent", "session"}
        if unknown:
            raise InvalidAction(
                f"unknown actor fields: {', '.join(sorted(map(str, unknown)))}",
                hint="an actor has agent and session; the principal comes from the API key",
            )
        if "agent" in given:
            agent = given["agent"]  # Actor checks it
        if "session" in given:
            chosen = validate_session_id(given["session"])
            if session is not None and chosen != session:
                raise InvalidAction(
                    f"actor.session {chosen!r} and the session header {session!r} differ",
                    hint="name the session once, in the header or in actor.session",
                )
    elif given is not None:
        raise InvalidAction("actor must be an object with agent and session")
    return Actor(
        agent=agent, session=chosen or default_session(principal), principal=principal.name
    )


def default_session(principal: Principal) -> str:
    """The session of a call that names none."""
    return f"{principal.name}-default"
