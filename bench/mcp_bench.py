"""Benchmark of the MCP bridge (issue: MCP bridge figures).

Run: .venv/bin/python bench/mcp_bench.py [--calls 1000] [--concurrency 16] [--stand-in] [--out FILE]

In one run, against ``aegisflow serve`` on loopback with a durable git ledger and
``tests/mcp/policy.yaml``, the official Python SDK client calls server-everything's
``echo`` directly and through ``aegisflow mcp-proxy`` (allow path: each call decided,
recorded, forwarded, and its result reported):

* added latency per ``tools/call``: the same sequence of calls timed both ways, and the
  differences of the percentiles;
* calls/s through one proxy with ``--concurrency`` calls in flight on one session;
* the proxy process's peak resident memory (VmHWM) at the end.

With ``--stand-in``, the proxy asks a stand-in service instead (its own process, aiohttp
on loopback) that answers every action "allow" at once and records nothing: the same
figures then measure the floor, what the proxy and its one HTTP round trip add before
any policy or ledger work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import Implementation

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from service_bench import AGENT_KEY, Server, free_port, make_home, publish, wait_healthy  # noqa: E402

EVERYTHING = [
    "node",
    str(ROOT / "tests/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
    "stdio",
]


class StandIn:
    """The stand-in service as a child process (``--serve-stand-in PORT``)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-stand-in", str(self.port)]
        )
        wait_healthy(self.url, self.process)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def serve_stand_in(port: int) -> None:
    from aiohttp import web  # noqa: PLC0415 - only the stand-in's process needs it

    async def allow(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"decision": "allow", "envelope_id": str(uuid.uuid4())})

    async def results(request: web.Request) -> web.Response:
        reports = (await request.json())["results"]
        return web.json_response({"results": [{"envelope_id": r["envelope_id"]} for r in reports]})

    async def hidden(_request: web.Request) -> web.Response:
        return web.json_response({"hidden": []})

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/v1/actions", allow)
    app.router.add_post("/v1/results", results)
    app.router.add_post("/v1/tools/hidden", hidden)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def proxy_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"mcp-proxy" in cmdline and b"python" in cmdline:
                found.append(int(entry.name))
    return found


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def timed_calls(client: ClientSession, calls: int) -> list[float]:
    out = []
    for n in range(calls):
        started = time.perf_counter()
        answer = await client.call_tool("echo", {"message": f"call {n}"})
        out.append(time.perf_counter() - started)
        if answer.is_error:
            raise SystemExit(f"call {n} failed: {answer}")
    return out


async def concurrent_calls(client: ClientSession, calls: int, concurrency: int) -> float:
    queue = iter(range(calls))

    async def worker() -> None:
        for n in queue:
            await client.call_tool("echo", {"message": f"c{n}"})

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return calls / (time.perf_counter() - started)


async def run(served: Server | StandIn, calls: int, concurrency: int) -> dict[str, Any]:
    info = Implementation(name="bench", version="1")
    direct = StdioServerParameters(command=EVERYTHING[0], args=EVERYTHING[1:])
    via = StdioServerParameters(
        command=str(ROOT / ".venv/bin/aegisflow"),
        args=["mcp-proxy", "--name", "everything", "--service", served.url, "--", *EVERYTHING],
        env={**os.environ, "AEGISFLOW_API_KEY": AGENT_KEY, "AEGISFLOW_SESSION": "bench-mcp"},
    )
    results: dict[str, Any] = {}
    async with stdio_client(direct) as (r, w), ClientSession(r, w, client_info=info) as client:
        await client.initialize()
        await timed_calls(client, 50)  # warm up
        direct_s = await timed_calls(client, calls)
    async with stdio_client(via) as (r, w), ClientSession(r, w, client_info=info) as client:
        await client.initialize()
        await timed_calls(client, 50)
        proxied_s = await timed_calls(client, calls)
        results["calls_per_s_through_proxy"] = round(
            await concurrent_calls(client, calls, concurrency)
        )
        (pid,) = proxy_pids()
        results["proxy_peak_rss_mb"] = round(peak_rss_mb(pid), 1)
    d = [x * 1000 for x in direct_s]
    p = [x * 1000 for x in proxied_s]
    results.update(
        calls=calls,
        concurrency=concurrency,
        direct_ms={"p50": round(statistics.median(d), 3), "p99": round(percentile(d, 0.99), 3)},
        proxied_ms={"p50": round(statistics.median(p), 3), "p99": round(percentile(p, 0.99), 3)},
    )
    results["added_ms"] = {
        "p50": round(results["proxied_ms"]["p50"] - results["direct_ms"]["p50"], 3),
        "p99": round(results["proxied_ms"]["p99"] - results["direct_ms"]["p99"], 3),
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--stand-in", action="store_true", help="measure the floor (see above)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve-stand-in", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stand_in:
        serve_stand_in(args.serve_stand_in)
        return
    if args.stand_in:
        stand_in = StandIn()
        try:
            results = asyncio.run(run(stand_in, args.calls, args.concurrency))
        finally:
            stand_in.stop()
        publish({"service": "stand-in (allow at once, nothing recorded)", **results}, args.out)
        return
    scratch = os.environ.get("BENCH_TMP")
    with tempfile.TemporaryDirectory(prefix="aegisflow-mcp-bench-", dir=scratch) as tmp:
        home = make_home(Path(tmp))
        policy = str(ROOT / "tests/mcp/policy.yaml")
        served = Server(home, "--policy", policy, "--session-idle", "0")
        try:
            results = asyncio.run(run(served, args.calls, args.concurrency))
        finally:
            served.stop()
    publish(results, args.out)


if __name__ == "__main__":
    main()
