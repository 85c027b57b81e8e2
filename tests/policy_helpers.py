"""Shared helpers for the policy tests: packs, actors, and one-line evaluation."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

from aegisflow.envelope import Actor, Envelope
from aegisflow.policy import Policy, load_policy
from aegisflow.policy.engine import Decision
from aegisflow.policy.normalize import action_envelopes, shell_envelopes

ROOT = Path(__file__).resolve().parent.parent
PACKS = ROOT / "policies"
CORPUS = Path(__file__).resolve().parent / "corpus"
ACTOR = Actor(agent="claude-code", session="sess-2026-04-06-1422", principal="ci-bot")
WORKSPACE = "/workspace"


@functools.cache
def pack(name: str) -> Policy:
    path = PACKS / f"{name}.yaml"
    return load_policy(path.read_bytes(), source=str(path), name=name)


def counter_ids() -> object:
    numbers = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(numbers):012d}"


def action(data: dict[str, object]) -> Envelope:
    (envelope,) = action_envelopes(data, actor=ACTOR, new_id=counter_ids())  # type: ignore[arg-type]
    return envelope


def decide_action(policy: Policy, data: dict[str, object]) -> Decision:
    return policy.evaluate(action(data))


def decide_line(policy: Policy, line: str, cwd: str = WORKSPACE) -> tuple[Envelope, Decision]:
    envelopes = shell_envelopes(line, actor=ACTOR, cwd=cwd, new_id=counter_ids())  # type: ignore[arg-type]
    return policy.evaluate_all(envelopes).deciding


def corpus(name: str) -> list[str]:
    lines = (CORPUS / name).read_text().splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
