"""Benchmarks of the governance service (issue: governance service figures).

Run: .venv/bin/python bench/service_bench.py [load] [approve] [start] [--out FILE]

Every part runs ``aegisflow serve`` as a real process on loopback, on a home made under
``$BENCH_TMP`` (default: the system temp directory) with a durable git ledger:

* ``load``: ``wrk`` (Debian's, installed by ``bench/tools``) posts the walkthrough's
  ``github.get_file_contents`` action to ``POST /admin/v1/test-action`` (the allow path,
  each answer durable in the ledger) with 32 connections for ``--seconds`` after a 2 s
  warm-up, next to an aiohttp endpoint on the same event loop that does nothing, in the
  same run; reports decisions/s, latency percentiles and the ratio.
* ``approve``: a review is parked, approved over HTTP, and the agent retries at once;
  the figure is the time from sending the approval to the retry's ``allow``.
* ``start``: a ledger of ``--entries`` entries (default 1M) written through the service
  code with a clock spread over 30 days (sessions of 100 entries, each closed with its
  manifest, 5% reviews), then the time from ``aegisflow serve`` starting to ``/health``
  answering. The filled home is kept (``--keep``) for reruns with ``--home``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from aegisflow.approvals import Principal
from aegisflow.cli.policy import read_policy
from aegisflow.keys import load_signer
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.service import Governance

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
AGENT_KEY = "bench-agent-key-0001"
REVIEWER_KEY = "bench-reviewer-key-0001"
GET_FILE = {
    "protocol": "git",
    "tool": "github.get_file_contents",
    "target": "aegisflow/aegisflow",
    "capability": "read",
    "parameters": {"path": "tests/test_evidence.py", "ref": "main"},
}
PR = {
    "protocol": "git",
    "tool": "github.create_pull_request",
    "target": "aegisflow/aegisflow",
    "capability": "write",
    "parameters": {"title": "fix: flaky test", "head": "claude/fix", "base": "main"},
}
NOOP_SERVER = """
import sys
from aiohttp import web

async def noop(request):
    await request.read()
    return web.json_response({"decision": "allow"})

app = web.Application()
app.router.add_post("/noop", noop)
from aegisflow.eventloop import new_event_loop  # the service's loop (uvloop if installed)
web.run_app(
    app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, loop=new_event_loop()
)
"""
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "{key}"
wrk.headers["X-AegisFlow-Session"] = "bench-load"
"""


def publish(results: dict, out: Path | None) -> None:
    """Print the results as one JSON line, and keep them in ``out`` when given."""
    print(json.dumps(results))
    if out:
        out.write_text(json.dumps(results, indent=2) + "\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool(name: str, *args: str, home: Path) -> str:
    done = subprocess.run(
        [str(BIN / name), *args],
        cwd=home,
        env={**os.environ, "AEGISFLOW_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def make_home(parent: Path) -> Path:
    """A home like install.sh makes: keys, an empty ledger, the packs, two API keys."""
    home = parent / "home"
    home.mkdir(parents=True)
    shutil.copytree(ROOT / "policies", home / "policies")
    tool("aegisctl", "keys", "init", home=home)
    tool("aegisflow", "ledger", "init", home=home)
    keys = (("claude-code", "agent", AGENT_KEY), ("alice", "reviewer", REVIEWER_KEY))
    for principal, role, key in keys:
        tool("aegisctl", "keys", "api-key", "--principal", principal, "--role", role,
             "--key", key, home=home)  # fmt: skip
    return home


class Server:
    """``aegisflow serve`` as a child process; ``started_s`` is the time to /health."""

    def __init__(self, home: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (home / "serve.log").open("ab")
        start = time.perf_counter()
        self.process = subprocess.Popen(
            [str(BIN / "aegisflow"), "serve", "--port", str(self.port), *extra],
            cwd=home,
            env={**os.environ, "AEGISFLOW_HOME": str(home)},
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.started_s = wait_healthy(self.url, self.process) - start

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def wait_healthy(url: str, process: subprocess.Popen[bytes], path: str = "/health") -> float:
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url + path, timeout=1) as response:  # noqa: S310
                if response.status in (200, 405):
                    return time.perf_counter()
        except urllib.error.HTTPError as e:
            if e.code == 405:
                return time.perf_counter()
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server at {url} did not start")
        time.sleep(0.01)


# -- load -------------------------------------------------------------------------------


def wrk(url: str, body: dict[str, Any], *, seconds: int, connections: int, tmp: Path) -> dict:
    script = tmp / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(json.dumps(body)), key=AGENT_KEY))
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict:
    result: dict[str, Any] = {}
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    for line in out.splitlines():
        words = line.split()
        if len(words) == 2 and words[0].endswith("%") and words[0] in ("50%", "90%", "99%"):
            value = words[1]
            unit = next(u for u in ("us", "ms", "s") if value.endswith(u))
            result[f"p{words[0][:-1]}_ms"] = round(float(value[: -len(unit)]) * units[unit], 2)
        elif line.startswith("Requests/sec:"):
            result["requests_per_s"] = round(float(words[1]))
        elif "requests in" in line:
            result["requests"] = int(words[0])
        elif line.strip().startswith("Non-2xx"):
            result["non_2xx"] = int(words[-1])
        elif line.strip().startswith("Socket errors"):
            result["socket_errors"] = line.strip()
    return result


def bench_load(tmp: Path, seconds: int, connections: int) -> dict:
    home = make_home(tmp / "load")
    noop_port = free_port()
    noop = subprocess.Popen([str(BIN / "python"), "-c", NOOP_SERVER, str(noop_port)])
    server = Server(home, "--session-idle", "0")
    try:
        wait_healthy(f"http://127.0.0.1:{noop_port}", noop, "/noop")
        action_url = server.url + "/admin/v1/test-action"
        wrk(action_url, GET_FILE, seconds=2, connections=connections, tmp=tmp)  # warm up
        gateway = wrk(action_url, GET_FILE, seconds=seconds, connections=connections, tmp=tmp)
        baseline = wrk(
            f"http://127.0.0.1:{noop_port}/noop",
            GET_FILE,
            seconds=seconds,
            connections=connections,
            tmp=tmp,
        )
        with urllib.request.urlopen(server.url + "/health") as response:  # noqa: S310
            entries = json.load(response)["ledger_entries"]
    finally:
        server.stop()
        noop.terminate()
        noop.wait()
    verified = subprocess.run(
        [str(BIN / "aegisctl"), "evidence", "verify", "--home", str(home)],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "connections": connections,
        "seconds": seconds,
        "test_action": gateway,
        "noop_aiohttp": baseline,
        "ratio": round(gateway["requests_per_s"] / baseline["requests_per_s"], 3),
        "ledger_entries_after": entries,
        "ledger_verifies": verified.returncode == 0,
    }


# -- approve to allow ---------------------------------------------------------------------


async def approve_rounds(url: str, rounds: int) -> list[float]:
    agent = {"X-API-Key": AGENT_KEY, "X-AegisFlow-Session": "bench-approve"}
    reviewer = {"X-API-Key": REVIEWER_KEY}
    out = []
    async with aiohttp.ClientSession() as http:
        for n in range(rounds):
            action = {**PR, "parameters": {**PR["parameters"], "title": f"fix {n}"}}
            async with http.post(url + "/v1/actions", json=action, headers=agent) as r:
                review = await r.json()
            approval_id = review["envelope_id"]
            started = time.perf_counter()
            async with http.post(
                f"{url}/admin/v1/approvals/{approval_id}/approve",
                json={"comment": "ok"},
                headers=reviewer,
            ) as r:
                assert r.status == 200, await r.text()
            async with http.post(
                url + "/v1/actions", json={**action, "approval_ref": approval_id}, headers=agent
            ) as r:
                done = await r.json()
            out.append(time.perf_counter() - started)
            assert done["decision"] == "allow", done
    return out


def bench_approve(tmp: Path, rounds: int) -> dict:
    home = make_home(tmp / "approve")
    server = Server(home)
    try:
        ms = [s * 1000 for s in asyncio.run(approve_rounds(server.url, rounds))]
    finally:
        server.stop()
    ms.sort()
    return {
        "rounds": rounds,
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
        "max_ms": round(ms[-1], 2),
    }


# -- start on a big ledger --------------------------------------------------------------


def fill(home: Path, total: int) -> dict:
    """Write ``total`` entries through :class:`Governance` with a clock over 30 days."""
    now = datetime.now(UTC)
    step = timedelta(days=30) / total
    written = [0]

    def clock() -> datetime:
        return now - timedelta(days=30) + step * written[0]

    signer = load_signer(home / "keys" / "ledger.key")
    ledger = Ledger.open(GitStorage(home / "ledger", writable=True), signer, clock=clock)
    governance = Governance(
        policy=read_policy(home / "policies" / "pr-writer.yaml"), ledger=ledger, clock=clock
    )
    agent = Principal(name="claude-code", roles=frozenset({"agent"}))
    mix = [GET_FILE] * 15 + [
        {"protocol": "shell", "tool": "shell.rm", "target": "/workspace", "capability": "delete"},
        {"protocol": "shell", "tool": "shell.pytest", "target": "/workspace",
         "capability": "execute"},
        {**GET_FILE, "parameters": {"path": "src/app.py", "ref": "main"}},
        {**GET_FILE, "parameters": {"path": "README.md", "ref": "main"}},
        PR,
    ]  # fmt: skip
    per_session = 100

    async def session(k: int) -> None:
        name = f"bench-{k:06d}"
        for n in range(per_session):
            await governance.act(mix[(k + n) % len(mix)], agent, session=name)
            written[0] += 1
        await governance.close_session(name)

    async def run() -> None:
        sessions = total // per_session
        workers = 32
        for first in range(0, sessions, workers):
            await asyncio.gather(
                *(session(k) for k in range(first, min(first + workers, sessions)))
            )

    started = time.perf_counter()
    asyncio.run(run())
    ledger.close()
    return {"entries": total, "fill_s": round(time.perf_counter() - started, 1)}


def bench_start(tmp: Path, entries: int, home: Path | None, keep: bool) -> dict:
    result: dict[str, Any] = {}
    if home is None:
        home = make_home(tmp / "start")
        result.update(fill(home, entries))
    starts = []
    for _ in range(3):
        server = Server(home)
        with urllib.request.urlopen(server.url + "/health") as response:  # noqa: S310
            result["ledger_entries"] = json.load(response)["ledger_entries"]
        server.stop()
        starts.append(round(server.started_s, 2))
    result["start_to_serving_s"] = starts
    result["home"] = str(home) if keep else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", default=["load", "approve", "start"])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--home", type=Path, help="start: reuse a filled home")
    parser.add_argument("--keep", action="store_true", help="start: keep the filled home")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if "load" in args.parts and shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run bench/tools first")
    tmp = Path(tempfile.mkdtemp(prefix="aegisflow-bench-", dir=os.environ.get("BENCH_TMP")))
    results: dict[str, Any] = {"host_cpus": os.cpu_count()}
    try:
        if "load" in args.parts:
            results["load"] = bench_load(tmp, args.seconds, args.connections)
            print(json.dumps(results["load"]), flush=True)
        if "approve" in args.parts:
            results["approve_to_allow"] = bench_approve(tmp, args.rounds)
            print(json.dumps(results["approve_to_allow"]), flush=True)
        if "start" in args.parts:
            results["start"] = bench_start(tmp, args.entries, args.home, args.keep)
            print(json.dumps(results["start"]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
