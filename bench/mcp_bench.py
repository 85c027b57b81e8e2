"""Benchmark of the MCP bridge (issue: MCP bridge figures).

Run: .venv/bin/python bench/mcp_bench.py [--calls 1000] [--concurrency 16] [--out FILE]

In one run, against ``aegisflow serve`` on loopback with a durable git ledger and
``tests/mcp/policy.yaml``, the official Python SDK client calls server-everything's
``echo`` directly and through ``aegisflow mcp-proxy`` (allow path: each call decided,
recorded, forwarded, and its result reported):

* added latency per ``tools/call``: the same sequence of calls timed both ways, and the
  differences of the percentiles;
* calls/s through one proxy with ``--concurrency`` calls in flight on one session;
* the proxy process's peak resident memory (VmHWM) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import Implementation

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from service_bench import AGENT_KEY, Server, make_home, publish  # noqa: E402

EVERYTHING = [
    "node",
    str(ROOT / "tests/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
    "stdio",
]


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


async def run(served: Server, calls: int, concurrency: int) -> dict[str, Any]:
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
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
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
