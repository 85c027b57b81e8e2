"""Decisions as ledger entries, and what-if replay of recorded decisions.

Pure: no I/O. :func:`decision_body` is the body of the ``decision`` entry the service
records for every evaluated envelope; it carries the whole envelope, so any later
policy can be replayed against real history with :func:`replay` (the CLI reads the
ledger and hands the bodies in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aegisflow.envelope import Envelope, InvalidAction
from aegisflow.policy.engine import Decision, Policy
from aegisflow.policy.model import STRICTNESS

APPROVED_PREFIX = "approved:"


def decision_body(envelope: Envelope, decision: Decision) -> dict[str, Any]:
    """The body of the ``decision`` ledger entry for ``envelope``."""
    body: dict[str, Any] = {
        "envelope_id": envelope.envelope_id,
        "tool": envelope.tool,
        "target": envelope.target,
        "decision": decision.decision,
        "matched_rule": decision.matched_rule,
        "reason": decision.reason,
        "policy": decision.policy,
        "policy_hash": decision.policy_hash,
        "action_digest": envelope.action_digest,
        "envelope": envelope.to_dict(),
    }
    if decision.suggested_alternative:
        body["suggested_alternative"] = decision.suggested_alternative
    return body


@dataclass(frozen=True, slots=True)
class Change:
    session: str
    index: int
    envelope_id: str
    tool: str
    target: str
    before: str
    before_rule: str
    after: str
    after_rule: str


@dataclass(slots=True)
class ReplayReport:
    """How a proposed policy would have decided the recorded history."""

    policy: str
    policy_hash: str
    replayed: int = 0
    skipped: int = 0
    """Decision entries without a usable recorded envelope."""
    changes: list[Change] = field(default_factory=list)

    def count(self, after: str) -> int:
        return sum(1 for c in self.changes if c.after == after)

    @property
    def unchanged(self) -> int:
        return self.replayed - len(self.changes)

    def summary(self) -> str:
        if not self.changes:
            return f"no decision would change ({self.replayed} replayed)"
        parts = []
        for after, phrase in (
            ("block", "blocked {n} {calls}"),
            ("review", "sent {n} {calls} to review"),
            ("allow", "allowed {n} more"),
        ):
            n = self.count(after)
            if n:
                parts.append(phrase.format(n=n, calls="call" if n == 1 else "calls"))
        joined = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
        return (
            f"this change would have {joined} "
            f"({self.replayed} replayed, {self.unchanged} unchanged)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "policy_hash": self.policy_hash,
            "replayed": self.replayed,
            "skipped": self.skipped,
            "unchanged": self.unchanged,
            "newly_blocked": self.count("block"),
            "newly_reviewed": self.count("review"),
            "newly_allowed": self.count("allow"),
            "summary": self.summary(),
            "changes": [
                {
                    "session": c.session,
                    "index": c.index,
                    "envelope_id": c.envelope_id,
                    "tool": c.tool,
                    "target": c.target,
                    "before": {"decision": c.before, "matched_rule": c.before_rule},
                    "after": {"decision": c.after, "matched_rule": c.after_rule},
                }
                for c in self.changes
            ],
        }


def replay(records: Iterable[tuple[str, int, Mapping[str, Any]]], policy: Policy) -> ReplayReport:
    """Re-decide recorded ``decision`` bodies under ``policy``.

    Args:
        records: ``(session, ledger index, body)`` of each ``decision`` entry.
        policy: The proposed policy.

    A decision that allowed a retry because a human approved it (``approved:<id>``) is
    compared as the ``review`` that led to the approval: if the new policy still asks
    for review, nothing changed.
    """
    report = ReplayReport(policy.name, policy.content_hash)
    for session, index, body in records:
        try:
            envelope = Envelope.from_dict(body.get("envelope"))
        except InvalidAction:
            report.skipped += 1
            continue
        before = str(body.get("decision", ""))
        before_rule = str(body.get("matched_rule", ""))
        if before_rule.startswith(APPROVED_PREFIX):
            before = "review"
        if before not in STRICTNESS:
            report.skipped += 1
            continue
        report.replayed += 1
        after = policy.evaluate(envelope)
        if after.decision != before:
            report.changes.append(
                Change(
                    session=session,
                    index=index,
                    envelope_id=envelope.envelope_id,
                    tool=envelope.tool,
                    target=envelope.target,
                    before=before,
                    before_rule=before_rule,
                    after=after.decision,
                    after_rule=after.matched_rule,
                )
            )
    return report
