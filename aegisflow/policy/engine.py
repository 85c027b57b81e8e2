"""Policy evaluation: first matching rule wins, strictest envelope wins, fail closed.

Pure: no I/O. A :class:`Policy` is compiled once by :func:`aegisflow.policy.loader.
load_policy` and is safe to share between threads and tasks. Evaluating an envelope:

1. Derive the envelope's :class:`~aegisflow.policy.facts.Facts` (argv, flags, paths).
2. Take the rules whose protocol and tool match, in policy order (an index memoized
   per ``(protocol, tool)`` keeps this to a dictionary lookup).
3. The first rule whose target, capability and conditions match decides; with none,
   the policy's ``default_decision`` does (``block`` unless the policy says otherwise).
4. A shell command that could not be parsed, or whose program is only known once the
   shell runs, is never allowed: it gets at least the policy's ``unparseable``
   decision (``block`` unless set to ``review``).

A command line of several simple commands is several envelopes; :meth:`Policy.
evaluate_all` decides each and the strictest decision stands (block > review > allow).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aegisflow.envelope import Envelope
from aegisflow.policy.facts import facts_for
from aegisflow.policy.glob import GlobSet, glob_set
from aegisflow.policy.model import (
    STRICTNESS,
    CredentialSpec,
    DecisionName,
    Rule,
)

DEFAULT_RULE = "default"


def _path_gated(rule: Rule) -> bool:
    return rule.restricts and rule.when is not None and rule.when.paths_only


UNPARSEABLE_RULE = "builtin:shell-unparseable"
UNKNOWN_PROGRAM_RULE = "builtin:shell-unknown-program"
MAX_MEMO = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The outcome for one envelope."""

    decision: DecisionName
    matched_rule: str
    reason: str
    policy: str
    policy_hash: str
    suggested_alternative: str | None = None
    credential: CredentialSpec | None = None
    approvers: tuple[str, ...] = ()
    approval_expiry: int | None = None
    rule_line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision": self.decision,
            "matched_rule": self.matched_rule,
            "reason": self.reason,
            "policy": self.policy,
            "policy_hash": self.policy_hash,
        }
        if self.suggested_alternative:
            out["suggested_alternative"] = self.suggested_alternative
        if self.credential is not None:
            out["credential"] = self.credential.to_dict()
        if self.decision == "review":
            out["approvers"] = list(self.approvers)
            out["approval_expiry"] = self.approval_expiry
        return out


@dataclass(frozen=True, slots=True)
class Verdict:
    """Decisions for the envelopes of one call; the strictest one stands."""

    items: tuple[tuple[Envelope, Decision], ...]

    @property
    def deciding(self) -> tuple[Envelope, Decision]:
        """The strictest (envelope, decision); the first of equals."""
        return max(self.items, key=lambda item: STRICTNESS[item[1].decision])

    @property
    def decision(self) -> Decision:
        return self.deciding[1]


@dataclass(frozen=True, slots=True)
class RuleTrace:
    rule: Rule
    matched: bool
    why: str


@dataclass(frozen=True, slots=True)
class Explanation:
    envelope: Envelope
    traces: tuple[RuleTrace, ...]
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_dict(),
            "action_digest": self.envelope.action_digest,
            "rules": [
                {
                    "rule": t.rule.name,
                    "line": t.rule.line,
                    "decision": t.rule.decision,
                    "matched": t.matched,
                    "why": t.why,
                }
                for t in self.traces
            ],
            "result": self.decision.to_dict(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A compiled policy. Build it with :func:`aegisflow.policy.loader.load_policy`."""

    name: str
    content_hash: str
    default_decision: DecisionName
    approval_expiry: int
    approvers: tuple[str, ...]
    unparseable: DecisionName
    rules: tuple[Rule, ...]
    source: str = "<policy>"
    _memo: dict[tuple[str, str, tuple[bool, ...]], tuple[Rule, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _gates: tuple[str, ...] = field(init=False, compare=False, repr=False)
    """The parameters some rule needs: which of them an envelope has is part of the index."""

    _path_gate: GlobSet = field(init=False, compare=False, repr=False)
    """Every pattern of the restricting paths-only rules (secrets, system files), in one set."""

    _decisions: dict[int, Decision] = field(init=False, compare=False, repr=False)
    """What each rule decides: the same for every envelope it matches, so built once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_decisions", {id(r): self._from_rule(r) for r in self.rules})
        gates = sorted({r.needs_parameter for r in self.rules if r.needs_parameter is not None})
        object.__setattr__(self, "_gates", tuple(gates))
        patterns = tuple(g for r in self.rules if _path_gated(r) for g in r.when.paths.globs)  # type: ignore[union-attr]
        object.__setattr__(self, "_path_gate", glob_set(patterns))

    def always_blocks(self, protocol: str, tool: str) -> bool:
        """Whether every call of ``tool`` is blocked, whatever its target, capability and
        parameters (the MCP bridge hides such tools from ``tools/list``).

        Conservative: any rule for the tool that could allow or review makes it False.
        """
        for rule in self.rules:
            if not rule.head_matches(protocol, tool):
                continue
            if rule.decision != "block":
                return False
            if not rule.target.globs and not rule.capability.globs and rule.when is None:
                return True
        return self.default_decision == "block"

    @property
    def max_approval_expiry(self) -> int:
        """The longest any approval under this policy stays usable, in seconds."""
        return max([self.approval_expiry, *(r.approval_expiry or 0 for r in self.rules)])

    def evaluate(self, envelope: Envelope) -> Decision:
        """Decide one envelope."""
        facts = facts_for(envelope)
        first = facts.positionals[0] if facts.positionals else None
        subcommand = first.text if first is not None and first.known else None
        # When no path can match any restricting paths-only rule, all of them are skipped
        # at once (each would say "no path matches").
        gate = self._path_gate
        no_gated_path = all(p.kind == "literal" and not gate.match(p.text) for p in facts.paths)
        for rule in self._candidates(envelope):
            if no_gated_path and _path_gated(rule):
                continue
            # A shortcut for what check() would refuse anyway: a literal subcommand the
            # rule does not name. (Rules whose parameter is missing are not candidates.)
            if (
                subcommand is not None
                and rule.needs_subcommand is not None
                and subcommand not in rule.needs_subcommand
            ):
                continue
            matched, _ = rule.check_rest(envelope, facts)
            if matched:
                return self._guard(envelope, self._decisions[id(rule)])
        return self._guard(envelope, self._default())

    def evaluate_all(self, envelopes: Iterable[Envelope]) -> Verdict:
        """Decide every envelope of one call.

        Raises:
            ValueError: If there are no envelopes (a caller bug: every call has one).
        """
        items = tuple((envelope, self.evaluate(envelope)) for envelope in envelopes)
        if not items:
            raise ValueError("evaluate_all needs at least one envelope")
        return Verdict(items)

    def explain(self, envelope: Envelope) -> Explanation:
        """Every rule in order, whether it matched and why; the same matcher as evaluate."""
        facts = facts_for(envelope)
        traces: list[RuleTrace] = []
        decided: Decision | None = None
        for rule in self.rules:
            matched, why = rule.check(envelope, facts)
            traces.append(RuleTrace(rule, matched, why))
            if matched and decided is None:
                decided = self._from_rule(rule)
        result = self._guard(envelope, decided or self._default())
        return Explanation(envelope, tuple(traces), result)

    # -- internals --

    def _candidates(self, envelope: Envelope) -> Sequence[Rule]:
        """The rules that can decide ``envelope``, in order, from a memoized index.

        The index is keyed by protocol, tool and which of the parameters that rules need
        (``env``, ``variables``, ...) the envelope has: a rule whose parameter is missing
        cannot match, so it is left out of that key's list.
        """
        present = tuple(gate in envelope.parameters for gate in self._gates)
        key = (envelope.protocol, envelope.tool, present)
        found = self._memo.get(key)
        if found is None:
            missing = {gate for gate, has in zip(self._gates, present, strict=True) if not has}
            found = tuple(
                r
                for r in self.rules
                if r.head_matches(envelope.protocol, envelope.tool)
                and r.needs_parameter not in missing
            )
            if len(self._memo) < MAX_MEMO:
                self._memo[key] = found
        return found

    def _from_rule(self, rule: Rule) -> Decision:
        review = rule.decision == "review"
        return Decision(
            decision=rule.decision,
            matched_rule=rule.name,
            reason=rule.reason,
            policy=self.name,
            policy_hash=self.content_hash,
            suggested_alternative=rule.suggested_alternative,
            credential=rule.credential,
            approvers=(rule.approvers or self.approvers) if review else (),
            approval_expiry=(rule.approval_expiry or self.approval_expiry) if review else None,
            rule_line=rule.line,
        )

    def _default(self) -> Decision:
        review = self.default_decision == "review"
        return Decision(
            decision=self.default_decision,
            matched_rule=DEFAULT_RULE,
            reason=f"no rule matched; the policy's default decision is {self.default_decision}",
            policy=self.name,
            policy_hash=self.content_hash,
            approvers=self.approvers if review else (),
            approval_expiry=self.approval_expiry if review else None,
        )

    def _guard(self, envelope: Envelope, decided: Decision) -> Decision:
        if envelope.protocol != "shell":
            return decided
        params = envelope.parameters
        if "parse_error" in params:
            rule, reason = UNPARSEABLE_RULE, f"cannot check this command: {params['parse_error']}"
        elif 0 in (params.get("unknown") or ()) or 0 in (params.get("globs") or ()):
            rule, reason = UNKNOWN_PROGRAM_RULE, "the program is only known once the shell runs"
        else:
            return decided
        strictness = STRICTNESS[decided.decision] - STRICTNESS[self.unparseable]
        if strictness > 0 or (strictness == 0 and decided.matched_rule != DEFAULT_RULE):
            return decided  # a rule at least as strict decided; keep its reason
        review = self.unparseable == "review"
        return Decision(
            decision=self.unparseable,
            matched_rule=rule,
            reason=reason,
            policy=self.name,
            policy_hash=self.content_hash,
            suggested_alternative="split the command into plain commands without "
            "variables or substitutions in the program name",
            approvers=self.approvers if review else (),
            approval_expiry=self.approval_expiry if review else None,
        )
