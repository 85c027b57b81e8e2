"""Policy engine figures: compile time, decision latency, shell parse plus evaluate.

Usage: .venv/bin/python bench/policy_bench.py [--policy policies/pr-writer.yaml]
       [--rounds 20000] [--out bench/results/policy-run1.json]

Measured in one process on one core, with the garbage collector paused during the timed
loops (it runs between them) so a collection does not land in a single sample.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aegisflow.envelope import Actor, Envelope
from aegisflow.policy import load_policy
from aegisflow.policy.glob import _compile
from aegisflow.policy.normalize import action_envelopes, shell_envelopes
from aegisflow.policy.shell import parse_command_line

ROOT = Path(__file__).resolve().parent.parent
ACTOR = Actor(agent="claude-code", session="sess-bench-0001")

SEED_ACTIONS = [
    {"protocol": "git", "tool": "github.get_file_contents", "target": "aegisflow/aegisflow",
     "capability": "read"},
    {"protocol": "shell", "tool": "shell.pytest", "target": "/workspace", "capability": "execute"},
    {"protocol": "shell", "tool": "shell.rm", "target": "/workspace", "capability": "delete"},
    {"protocol": "git", "tool": "github.create_pull_request", "target": "aegisflow/aegisflow",
     "capability": "write"},
]  # fmt: skip
SHELL_COMMANDS = [
    "pytest -x -q tests/test_a.py",
    "git status",
    "git push origin feat/x",
    "git push --force origin main",
    "cat .env",
    "rm -rf build",
    "ls -la src",
    "grep -rn TODO src",
    "python -m pytest -k flaky",
    "npm test",
]
THREE_COMMAND_LINES = [
    "cd src && pytest -q 2>&1 | tail -20",
    "git status; git diff --stat; git log --oneline -5",
    "make build && make test && git status",
    "git add -A && git commit -m 'fix: flaky test' && git push origin feat/x",
]


def percentiles(samples_ns: Sequence[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000  # noqa: E731
    return {
        "n": len(ordered),
        "p50_us": round(pick(0.50), 2),
        "p90_us": round(pick(0.90), 2),
        "p99_us": round(pick(0.99), 2),
        "max_us": round(ordered[-1] / 1000, 2),
        "mean_us": round(statistics.fmean(ordered) / 1000, 2),
    }


def timed(fn: Callable[[], Any], rounds: int) -> list[int]:
    samples = []
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            start = clock()
            fn()
            samples.append(clock() - start)
    finally:
        gc.enable()
    return samples


def bench_compile(raw: bytes, source: str, loads: int) -> dict[str, Any]:
    samples = []
    for _ in range(loads):
        _compile.cache_clear()  # what a fresh process pays: no compiled globs or regexes
        re.purge()
        gc.collect()
        start = time.perf_counter_ns()
        policy = load_policy(raw, source=source)
        samples.append(time.perf_counter_ns() - start)
    result = percentiles(samples)
    return {
        "rules": len(policy.rules),
        "bytes": len(raw),
        "p50_ms": result["p50_us"] / 1000,
        "max_ms": result["max_us"] / 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policy", type=Path, default=ROOT / "policies" / "pr-writer.yaml")
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--loads", type=int, default=30)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    raw = args.policy.read_bytes()
    compile_result = bench_compile(raw, str(args.policy), args.loads)
    policy = load_policy(raw, source=str(args.policy))

    ids = itertools.count()
    new_id = lambda: f"00000000-0000-4000-8000-{next(ids) % 10**12:012d}"  # noqa: E731
    seed = [action_envelopes(a, actor=ACTOR, new_id=new_id)[0] for a in SEED_ACTIONS]
    shell: list[Envelope] = [
        e for line in SHELL_COMMANDS for e in shell_envelopes(line, actor=ACTOR, cwd="/workspace")
    ]
    envelopes = seed + shell
    for envelope in envelopes:  # warm the per-(protocol, tool) index
        policy.evaluate(envelope)

    cycle = itertools.cycle(envelopes)
    decision_all = timed(lambda: policy.evaluate(next(cycle)), args.rounds)
    seed_cycle = itertools.cycle(seed)
    decision_seed = timed(lambda: policy.evaluate(next(seed_cycle)), args.rounds)
    shell_cycle = itertools.cycle(shell)
    decision_shell = timed(lambda: policy.evaluate(next(shell_cycle)), args.rounds)

    line_cycle = itertools.cycle(THREE_COMMAND_LINES)
    line_rounds = max(1000, args.rounds // 4)
    parse_eval = timed(
        lambda: policy.evaluate_all(
            shell_envelopes(next(line_cycle), actor=ACTOR, cwd="/workspace", new_id=new_id)
        ),
        line_rounds,
    )
    parse_only = timed(lambda: parse_command_line(next(line_cycle)), line_rounds)
    bashlex_only = timed(
        lambda: parse_command_line(next(line_cycle), force_bashlex=True), line_rounds // 4
    )

    result = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "policy": {"file": str(args.policy), **compile_result},
        "decision_prenormalized_mix": percentiles(decision_all),
        "decision_seed_actions": percentiles(decision_seed),
        "decision_shell_envelopes": percentiles(decision_shell),
        "shell_3_commands_parse_and_evaluate": percentiles(parse_eval),
        "shell_3_commands_parse_only_lexer": percentiles(parse_only),
        "shell_3_commands_parse_only_bashlex": percentiles(bashlex_only),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
