"""Benchmark of the approval channels (issue: console, Slack, GraphQL figures).

Run: .venv/bin/python bench/channels_bench.py [--rounds 20] [--out FILE]

Against ``aegisflow serve`` on loopback (durable git ledger, pr-writer) with Slack
configured to post to a local stand-in:

* from an approval click to the agent's retry succeeding, for each channel: the console
  in headless Chromium (click Approve, the page comes back, the agent retries), Slack (a
  signed button payload, the agent retries), GraphQL (the ``approve`` mutation, the agent
  retries); p50 and max over ``--rounds`` each;
* the console's page weight: every byte the approvals page loads (HTML, CSS, JS; resource
  timing, cache disabled) with five actions pending;
* the console's first render: first-contentful-paint of the approvals page, each load in
  a fresh browser context (nothing cached).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from service_bench import AGENT_KEY, REVIEWER_KEY, Server, make_home, publish  # noqa: E402

from aegisflow.channels.slack import signature  # noqa: E402

SECRET = "bench-slack-signing-secret"  # noqa: S105 - a stand-in's, for this run only
WEIGHT = """(() => {
  const page = performance.getEntriesByType("navigation")[0];
  const assets = performance.getEntriesByType("resource");
  const sum = (key) => page[key] + assets.reduce((total, e) => total + e[key], 0);
  const requests = 1 + assets.length;
  return { requests, transfer: sum("transferSize"), decoded: sum("decodedBodySize") };
})()"""
FIRST_PAINT = """new Promise((resolve) => {
  new PerformanceObserver((list) => {
    const paint = list.getEntriesByName("first-contentful-paint")[0];
    if (paint) resolve(paint.startTime);
  }).observe({ type: "paint", buffered: true });
  setTimeout(() => resolve(null), 5000);
})"""


def ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(v * 1000 for v in values)
    return {"p50": round(statistics.median(ordered), 1), "max": round(ordered[-1], 1)}


class StandIn:
    def __init__(self) -> None:
        self.posts: list[Any] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                posts.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def post(url: str, body: Any, headers: dict[str, str], *, raw: bytes | None = None) -> Any:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.load(response)


class Agent:
    def __init__(self, url: str, session: str) -> None:
        self.url = url
        self.headers = {
            "X-API-Key": AGENT_KEY,
            "X-AegisFlow-Session": session,
            "Content-Type": "application/json",
        }
        self.n = 0

    def new_call(self) -> dict[str, Any]:
        self.n += 1
        return {
            "protocol": "shell",
            "tool": "shell.exec",
            "target": "/workspace",
            "capability": "execute",
            "parameters": {"command": f"curl -fsSL https://example.com/{self.n}.sh -o x"},
            "mode": "evaluate",
        }

    def act(self, call: dict[str, Any]) -> Any:
        return post(self.url + "/v1/actions", call, self.headers)


def retry_allowed(agent: Agent, call: dict[str, Any]) -> None:
    answer = agent.act(call)
    if answer["decision"] != "allow":
        raise SystemExit(f"retry not allowed: {answer}")


def console_rounds(url: str, rounds: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    agent = Agent(url, "bench-console")
    clicks: list[float] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox"] if os.geteuid() == 0 else [],
        )
        page = browser.new_page()
        page.goto(f"{url}/console/login")
        page.fill("#key", REVIEWER_KEY)
        page.click("form button[type=submit]")
        page.wait_for_url(f"{url}/console/")
        for _ in range(rounds):
            call = agent.new_call()
            approval_id = agent.act(call)["envelope_id"]
            page.goto(f"{url}/console/")
            card = page.locator(f"#approval-{approval_id}")
            card.wait_for()
            started = time.perf_counter()
            card.locator("button.approve").click()
            page.wait_for_url(f"**decided={approval_id}*")
            retry_allowed(agent, call)
            clicks.append(time.perf_counter() - started)

        for _ in range(5):  # a realistic page: five actions waiting
            agent.act(agent.new_call())
        weights, paints = [], []
        for _ in range(rounds):
            context = browser.new_context()
            fresh = context.new_page()
            fresh.goto(f"{url}/console/login")
            fresh.fill("#key", REVIEWER_KEY)
            fresh.click("form button[type=submit]")
            fresh.wait_for_url(f"{url}/console/")
            cdp = context.new_cdp_session(fresh)  # cold: the sign-in page cached the assets
            cdp.send("Network.enable")
            cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
            fresh.goto(f"{url}/console/", wait_until="load")
            weights.append(fresh.evaluate(WEIGHT))
            paint = fresh.evaluate(FIRST_PAINT)
            if paint is not None:
                paints.append(paint / 1000)
            context.close()
        browser.close()
    return {
        "click_to_retry_ms": ms(clicks),
        "page_weight": max(weights, key=lambda w: w["transfer"]),
        "first_render_ms": ms(paints),
    }


def slack_rounds(url: str, stand_in: StandIn, rounds: int) -> dict[str, Any]:
    agent = Agent(url, "bench-slack")
    clicks = []
    for _ in range(rounds):
        call = agent.new_call()
        approval_id = agent.act(call)["envelope_id"]
        deadline = time.monotonic() + 10
        while not any(approval_id in json.dumps(p) for p in stand_in.posts):
            if time.monotonic() > deadline:
                raise SystemExit("no Slack post")
            time.sleep(0.005)
        payload = {
            "type": "block_actions",
            "user": {"id": "U0ALICE"},
            "actions": [{"action_id": "approve", "value": approval_id}],
            "response_url": f"{stand_in.url}/respond/{approval_id}",
        }
        started = time.perf_counter()
        raw = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature(SECRET, stamp, raw),
        }
        post(url + "/slack/interactive", None, headers, raw=raw)
        retry_allowed(agent, call)
        clicks.append(time.perf_counter() - started)
    return {"click_to_retry_ms": ms(clicks)}


def graphql_rounds(url: str, rounds: int) -> dict[str, Any]:
    agent = Agent(url, "bench-graphql")
    headers = {"X-API-Key": REVIEWER_KEY, "Content-Type": "application/json"}
    mutation = "mutation($id: ID!) { approve(id: $id) { status } }"
    clicks = []
    for _ in range(rounds):
        call = agent.new_call()
        approval_id = agent.act(call)["envelope_id"]
        started = time.perf_counter()
        done = post(
            url + "/admin/graphql", {"query": mutation, "variables": {"id": approval_id}}, headers
        )
        if done["data"]["approve"]["status"] != "approved":
            raise SystemExit(f"not approved: {done}")
        retry_allowed(agent, call)
        clicks.append(time.perf_counter() - started)
    return {"click_to_retry_ms": ms(clicks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    stand_in = StandIn()
    os.environ["SLACK_SIGNING_SECRET"] = SECRET
    with tempfile.TemporaryDirectory(prefix="aegisflow-channels-bench-") as tmp:
        home = make_home(Path(tmp))
        served = Server(
            home,
            "--session-idle", "0",
            "--slack-webhook-url", f"{stand_in.url}/webhook",
            "--slack-user", "U0ALICE=alice",
            "--slack-response-prefix", f"{stand_in.url}/respond/",
        )  # fmt: skip
        try:
            results = {
                "rounds": args.rounds,
                "console": console_rounds(served.url, args.rounds),
                "slack": slack_rounds(served.url, stand_in, args.rounds),
                "graphql": graphql_rounds(served.url, args.rounds),
            }
        finally:
            served.stop()
            stand_in.server.shutdown()
    publish(results, args.out)


if __name__ == "__main__":
    main()
