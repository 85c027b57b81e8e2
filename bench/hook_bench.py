"""Benchmark of the agent hooks (issue: agent hooks figures).

Run: .venv/bin/python bench/hook_bench.py [--calls 300] [--out FILE]

Against ``aegisflow serve`` on loopback (durable git ledger, the default pr-writer
policy), a Claude Code Bash PreToolUse payload (``pytest -q``, allowed) is piped into
``aegisctl hook claude-code`` as a new process, the way the agent runs it, ``--calls``
times in a row:

* hook round trip including process start: spawn to exit, p50 and p99;
* where it goes: the interpreter's own start (``python -c pass``), the hook's imports
  (``-X importtime`` in the hook process, top-level imports after start-up), the
  service's decision over a kept-alive connection, and the same hook run through the
  full typer command line (what the fast path avoids);
* load on the service: its CPU time per call and the decisions it counted, for the hook
  calls and for the same number of direct ``POST /v1/actions`` with the same body, on one
  kept-alive connection, on a new connection each (as each hook process needs), and on
  a new connection each at the hook's pace (one call every hook round trip: a service
  that idles between calls pays for cold caches and its periodic checkpoints).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from service_bench import AGENT_KEY, Server, make_home, publish, tool  # noqa: E402

BIN = ROOT / ".venv" / "bin"
AUDITOR_KEY = "bench-auditor-key-0001"
IDLE_S = 5.0
PAYLOAD = {
    "session_id": "bench-hook",
    "transcript_path": "/home/dev/.claude/projects/-workspace-app/bench-hook.jsonl",
    "cwd": "/workspace/app",
    "permission_mode": "default",
    "hook_event_name": "PreToolUse",
    "tool_name": "Bash",
    "tool_input": {"command": "pytest -q", "description": "Run the tests"},
    "tool_use_id": "toolu_bench",
}
ACTION = {
    "protocol": "shell",
    "tool": "shell.exec",
    "target": "/workspace/app",
    "capability": "execute",
    "parameters": {"command": "pytest -q"},
    "justification": "Run the tests",
    "mode": "evaluate",
    "actor": {"agent": "claude-code"},
    "call_id": "toolu_bench",
}
VIA_TYPER = (
    "import sys; from aegisflow.cli.app import run; from aegisflow.cli.main import build;"
    "sys.exit(run(build(), sys.argv[1:]))"
)


def ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(v * 1000 for v in values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50": round(statistics.median(ordered), 1), "p99": round(p99, 1)}


def timed(
    argv: list[str], calls: int, stdin: bytes = b"", env: dict[str, str] | None = None
) -> list[float]:
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        done = subprocess.run(argv, input=stdin, capture_output=True, env=env, check=False)
        out.append(time.perf_counter() - started)
        if done.returncode != 0 or (argv[-1] == "claude-code" and b'"allow"' not in done.stdout):
            raise SystemExit(f"{argv} failed: {done.stdout!r} {done.stderr!r}")
    return out


def import_times(argv: list[str], calls: int, stdin: bytes, env: dict[str, str]) -> list[float]:
    """What the hook's own imports took in each run (``-X importtime``), site excluded."""
    out = []
    for _ in range(calls):
        done = subprocess.run(
            [str(BIN / "python"), "-X", "importtime", *argv],
            input=stdin, capture_output=True, env=env, check=True,
        )  # fmt: skip
        total, started = 0, False
        for line in done.stderr.decode().splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            _, cumulative, name = line.split("|")
            if not name.startswith(" ") or name.startswith("  "):
                continue  # only top-level imports: their time includes what they import
            if started and cumulative.strip().isdigit():
                total += int(cumulative.strip())
            started = started or name.strip() == "site"  # what came before is start-up
        out.append(total / 1e6)
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decisions(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics", headers={"X-API-Key": AUDITOR_KEY})
    text = conn.getresponse().read().decode()
    conn.close()
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("aegisflow_decisions_total{")
        )
    )


def direct_posts(port: int, calls: int, *, fresh: bool = False, pace: float = 0.0) -> list[float]:
    """``calls`` POSTs of the hook's action from this process: on one kept-alive
    connection, or (``fresh``) each on a new connection, as each hook process must;
    ``pace`` seconds apart (the hook's own rhythm) when given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {
        "X-API-Key": AGENT_KEY,
        "X-AegisFlow-Session": "bench-direct",
        "Content-Type": "application/json",
    }
    body = json.dumps(ACTION)
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        if pace:
            time.sleep(max(0.0, pace - (time.perf_counter() - started)))
            started = time.perf_counter()
        if fresh:
            conn.close()
        conn.request("POST", "/v1/actions", body=body, headers=headers)
        answer = json.loads(conn.getresponse().read())
        out.append(time.perf_counter() - started)
        if answer.get("decision") != "allow":
            raise SystemExit(f"direct call not allowed: {answer}")
    conn.close()
    return out


def run(served: Server, calls: int) -> dict[str, Any]:
    env = {**os.environ, "AEGISFLOW_API_KEY": AGENT_KEY, "AEGISFLOW_URL": served.url}
    env.pop("AEGISFLOW_SESSION", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: imports come from .pyc files
    payload = json.dumps(PAYLOAD).encode()
    hook = [str(BIN / "aegisctl"), "hook", "claude-code"]
    python = str(BIN / "python")
    timed(hook, 20, payload, env)  # warm the page cache and the service
    pid = served.process.pid

    before_cpu = cpu_seconds(pid)
    time.sleep(IDLE_S)  # what the service spends on its own while nothing arrives
    idle_rate = (cpu_seconds(pid) - before_cpu) / IDLE_S

    before_cpu, before_count = cpu_seconds(pid), decisions(served.port)
    hook_s = timed(hook, calls, payload, env)
    hook_cpu, hook_count = cpu_seconds(pid) - before_cpu, decisions(served.port) - before_count
    hook_cpu -= idle_rate * sum(hook_s)  # the hook calls are spread over that much time

    before_cpu, before_count = cpu_seconds(pid), decisions(served.port)
    direct_s = direct_posts(served.port, calls)
    direct_cpu, direct_count = cpu_seconds(pid) - before_cpu, decisions(served.port) - before_count

    before_cpu = cpu_seconds(pid)
    direct_posts(served.port, calls, fresh=True)
    fresh_cpu = cpu_seconds(pid) - before_cpu

    before_cpu = cpu_seconds(pid)
    direct_posts(served.port, calls, fresh=True, pace=statistics.median(hook_s))
    paced_cpu = cpu_seconds(pid) - before_cpu

    few = max(30, calls // 5)
    return {
        "calls": calls,
        "hook_round_trip_ms": ms(hook_s),
        "python_start_ms": ms(timed([python, "-c", "pass"], few, env=env)),
        "hook_imports_ms": ms(import_times(hook, few, payload, env)),
        "service_decision_ms": ms(direct_s),
        "hook_through_full_cli_ms": ms(
            timed([python, "-c", VIA_TYPER, "hook", "claude-code"], few, payload, env)
        ),
        "service": {
            "decisions_per_hook_call": round(hook_count / calls, 3),
            "decisions_per_direct_call": round(direct_count / calls, 3),
            "idle_cpu_ms_per_s": round(idle_rate * 1000, 2),
            "cpu_ms_per_hook_call": round(hook_cpu * 1000 / calls, 2),
            "cpu_ms_per_direct_call": round(direct_cpu * 1000 / calls, 2),
            "cpu_ms_per_direct_call_new_connection": round(fresh_cpu * 1000 / calls, 2),
            "cpu_ms_per_direct_call_at_the_hooks_pace": round(paced_cpu * 1000 / calls, 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(
        prefix="aegisflow-hook-bench-", dir=os.environ.get("BENCH_TMP")
    ) as tmp:
        home = make_home(Path(tmp))
        tool("aegisctl", "keys", "api-key", "--principal", "audit", "--role", "auditor",
             "--key", AUDITOR_KEY, home=home)  # fmt: skip
        served = Server(home, "--session-idle", "0")
        try:
            results = run(served, args.calls)
        finally:
            served.stop()
    publish(results, args.out)


if __name__ == "__main__":
    main()
