"""The approval queue: reviews parked until a human decides, bound to what was reviewed.

Pure: no I/O; time is an argument. The queue is derived from ledger entries
(:meth:`ApprovalQueue.replay`), so restarting the service loses nothing: a ``decision``
entry that says ``review`` parks an approval, ``approval``/``denial`` entries decide it,
and an allowed retry that cites it (``matched_rule: approved:<id>``) consumes it.

An approval is bound to the action digest, the session and the policy hash of the
reviewed action, is single-use, and expires. Nobody approves an action of their own
session, an agent never approves, and a rule's ``approvers`` restrict who may.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from aegisflow.envelope import Envelope
from aegisflow.errors import AegisError, InputError, PolicyError
from aegisflow.ledger.entry import parse_time
from aegisflow.policy.engine import Decision
from aegisflow.policy.loader import DEFAULT_APPROVAL_EXPIRY

Status = Literal["pending", "approved", "denied", "consumed"]
APPROVED_PREFIX = "approved:"
RETAIN = timedelta(hours=1)
"""How long a settled approval stays answerable after it expires, before it is pruned."""


class ApprovalError(PolicyError):
    """An approval cannot be used or decided as asked."""

    reference = "approval"


class UnknownApproval(InputError):
    reference = "approval-unknown"


class ApprovalForbidden(ApprovalError):
    reference = "approval-forbidden"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated caller: a name and its roles."""

    name: str
    roles: frozenset[str]

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    approval_id: str
    """The envelope id of the reviewed action."""
    envelope: Envelope
    action_digest: str
    policy_hash: str
    queued_at: datetime
    expires_at: datetime
    approvers: tuple[str, ...]
    rule: str = ""
    """The rule that asked for review, and its reason (what a reviewer is shown)."""
    reason: str = ""
    status: Status = "pending"
    reviewer: str | None = None
    comment: str | None = None
    decided_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        envelope = self.envelope
        out: dict[str, Any] = {
            "envelope_id": self.approval_id,
            "actor": envelope.actor.to_dict(),
            "tool": envelope.tool,
            "target": envelope.target,
            "parameters": dict(envelope.parameters),
            "queued_at": _time(self.queued_at),
            "expires_at": _time(self.expires_at),
            "status": self.status,
        }
        if envelope.justification:
            out["justification"] = envelope.justification
        if self.reviewer is not None:
            out["reviewer"] = self.reviewer
        if self.comment:
            out["comment"] = self.comment
        if self.decided_at is not None:
            out["decided_at"] = _time(self.decided_at)
        return out


class ApprovalQueue:
    """Approvals by id. Not thread-safe: the service owns it on its event loop."""

    def __init__(self) -> None:
        self._by_id: dict[str, Approval] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, approval_id: str) -> Approval:
        found = self._by_id.get(approval_id)
        if found is None:
            raise UnknownApproval(f"no approval {approval_id!r}")
        return found

    def all(self) -> list[Approval]:
        """Every approval in the queue's window, whatever its status."""
        return list(self._by_id.values())

    def pending(self, now: datetime) -> list[Approval]:
        return [a for a in self._by_id.values() if a.status == "pending" and not a.expired(now)]

    def live(self, session: str, now: datetime) -> bool:
        """Whether ``session`` has an approval still waiting for a human or a retry."""
        return any(
            a.envelope.session == session
            and a.status in ("pending", "approved")
            and not a.expired(now)
            for a in self._by_id.values()
        )

    def prune(self, now: datetime) -> int:
        """Forget approvals that expired more than :data:`RETAIN` ago; returns how many.

        The service restores the same window from the ledger on start, so what the queue
        answers does not depend on when the service was last restarted.
        """
        stale = [k for k, a in self._by_id.items() if a.expires_at + RETAIN <= now]
        for key in stale:
            del self._by_id[key]
        return len(stale)

    def park(self, envelope: Envelope, decision: Decision, now: datetime) -> Approval:
        """Queue ``envelope`` for review after ``decision`` said so."""
        approval = Approval(
            approval_id=envelope.envelope_id,
            envelope=envelope,
            action_digest=envelope.action_digest,
            policy_hash=decision.policy_hash,
            queued_at=now,
            expires_at=expires_at(decision, now),
            approvers=decision.approvers,
            rule=decision.matched_rule,
            reason=decision.reason,
        )
        self._by_id[approval.approval_id] = approval
        return approval

    def check_decider(self, approval_id: str, principal: Principal, now: datetime) -> Approval:
        """The pending approval ``principal`` may decide.

        Raises:
            UnknownApproval: If there is no such approval.
            ApprovalForbidden: If the principal is an agent, acted in the reviewed session,
                or is not among the rule's approvers.
            ApprovalError: If it is not pending or has expired.
        """
        approval = self.get(approval_id)
        if approval.status != "pending":
            raise ApprovalError(f"approval {approval_id} is already {approval.status}")
        if approval.expired(now):
            raise ApprovalError(f"approval {approval_id} expired at {_time(approval.expires_at)}")
        if principal.has("agent") and not principal.has("reviewer", "admin"):
            raise ApprovalForbidden("an agent's key can never approve or deny")
        if not principal.has("reviewer", "admin"):  # an auditor reads; every channel checks
            raise ApprovalForbidden("only reviewers and admins approve or deny")
        actor = approval.envelope.actor
        if principal.name in (actor.principal, actor.agent):
            raise ApprovalForbidden("nobody approves an action of their own session")
        if approval.approvers and not _may_approve(principal, approval.approvers):
            raise ApprovalForbidden(
                f"approvers for this action are {', '.join(approval.approvers)}",
                hint="ask one of them, or change the rule's approvers",
            )
        return approval

    def decide(
        self,
        approval_id: str,
        *,
        approved: bool,
        reviewer: str,
        comment: str | None,
        now: datetime,
    ) -> Approval:
        """Record a human's decision (after :meth:`check_decider` and the ledger write)."""
        decided = replace(
            self.get(approval_id),
            status="approved" if approved else "denied",
            reviewer=reviewer,
            comment=comment,
            decided_at=now,
        )
        self._by_id[approval_id] = decided
        return decided

    def check_retry(
        self, approval_ref: str, envelope: Envelope, now: datetime, *, policy_hash: str
    ) -> Approval:
        """The approval a retry may use under the policy with ``policy_hash``.

        Raises:
            UnknownApproval: If there is no such approval.
            ApprovalError: If it is pending, denied, consumed or expired, or was given
                for a different action, session or policy.
        """
        approval = self.get(approval_ref)
        if approval.status == "pending":
            raise ApprovalError(f"approval {approval_ref} is still pending review")
        if approval.status != "approved":
            raise ApprovalError(f"approval {approval_ref} is {approval.status}")
        if approval.expired(now):
            raise ApprovalError(f"approval {approval_ref} expired at {_time(approval.expires_at)}")
        if envelope.session != approval.envelope.session:
            raise ApprovalError(f"approval {approval_ref} belongs to another session")
        if envelope.actor.principal != approval.envelope.actor.principal:
            raise ApprovalError(f"approval {approval_ref} was given to another principal")
        if envelope.action_digest != approval.action_digest:
            raise ApprovalError(
                f"approval {approval_ref} was given for a different action",
                hint="retry exactly the reviewed call, or ask for a new review",
            )
        if policy_hash != approval.policy_hash:
            raise ApprovalError(
                f"approval {approval_ref} was given under another policy version",
                hint="the policy changed since the review: ask for a new review",
            )
        return approval

    def approved_for(
        self,
        envelope: Envelope,
        now: datetime,
        *,
        policy_hash: str,
        taken: frozenset[str] | set[str] = frozenset(),
    ) -> Approval | None:
        """An approval a retry of ``envelope`` that names none may use, if there is one.

        The same checks as :meth:`check_retry`: approved, unexpired, for this action in
        this session by the same principal under this policy version, and not yet used
        (nor in ``taken``: one approval covers one part of a call).
        """
        digest = envelope.action_digest
        for approval in self._by_id.values():
            if (
                approval.approval_id not in taken
                and approval.status == "approved"
                and approval.action_digest == digest
                and approval.envelope.session == envelope.session
                and approval.envelope.actor.principal == envelope.actor.principal
                and approval.policy_hash == policy_hash
                and not approval.expired(now)
            ):
                return approval
        return None

    def consume(self, approval_ref: str) -> None:
        self._by_id[approval_ref] = replace(self.get(approval_ref), status="consumed")

    def replay(self, entries: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Rebuild the queue from ledger entries ``(type, body)`` in ledger order."""
        for kind, body in entries:
            try:
                self._replay_one(kind, body)
            except (AegisError, KeyError, TypeError, ValueError):
                continue  # not an entry this queue understands; the verifier judges it

    def _replay_one(self, kind: str, body: Mapping[str, Any]) -> None:
        if kind == "decision":
            rule = str(body.get("matched_rule", ""))
            if body.get("decision") == "review" and "envelope" in body:
                envelope = Envelope.from_dict(body["envelope"])
                queued = parse_time(str(body["queued_at"]))
                self._by_id[envelope.envelope_id] = Approval(
                    approval_id=envelope.envelope_id,
                    envelope=envelope,
                    action_digest=envelope.action_digest,
                    policy_hash=str(body.get("policy_hash", "")),
                    queued_at=queued,
                    expires_at=parse_time(str(body["expires_at"])),
                    approvers=tuple(body.get("approvers", ())),
                    rule=str(body.get("matched_rule", "")),
                    reason=str(body.get("reason", "")),
                )
            elif body.get("decision") == "allow" and rule.startswith(APPROVED_PREFIX):
                approval_id = rule[len(APPROVED_PREFIX) :]
                if approval_id in self._by_id:
                    self.consume(approval_id)
        elif kind in ("approval", "denial"):
            approval_id = str(body["envelope_id"])
            if approval_id in self._by_id:
                self.decide(
                    approval_id,
                    approved=kind == "approval",
                    reviewer=str(body["reviewer"]),
                    comment=body.get("comment"),
                    now=parse_time(str(body["decided_at"])),
                )


def expires_at(decision: Decision, queued: datetime) -> datetime:
    """When an approval asked for at ``queued`` under ``decision`` stops being usable."""
    return queued + timedelta(seconds=decision.approval_expiry or DEFAULT_APPROVAL_EXPIRY)


def _may_approve(principal: Principal, approvers: tuple[str, ...]) -> bool:
    for approver in approvers:
        kind, _, name = approver.partition(":")
        if (kind == "role" and name in principal.roles) or (
            kind == "principal" and name == principal.name
        ):
            return True
    return False


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
