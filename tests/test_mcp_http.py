"""The MCP bridge in front of Streamable HTTP servers: server-everything in its HTTP mode,
and a stand-in that checks the per-call credential the policy delivered."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import Implementation
from serve_helpers import AGENT_KEY, Served, free_port, make_home, serving
from test_cli import BIN, _env
from test_mcp_proxy import POLICY, SERVERS, entries

EVERYTHING_JS = SERVERS / "server-everything" / "dist" / "index.js"
TOKEN = "remote-token-for-the-tests-0001"


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setenv("REMOTE_TOKEN_FOR_TESTS", TOKEN)
    home = make_home(tmp_path)
    with serving(
        home, "--policy", str(POLICY), "--static-credential", "remote-token=REMOTE_TOKEN_FOR_TESTS"
    ) as served:
        yield served


@pytest.fixture
def everything_http() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        ["node", str(EVERYTHING_JS), "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=1)
            except urllib.error.HTTPError:
                break  # it answers (with an error for a bare GET): it is up
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("server-everything did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@asynccontextmanager
async def proxied_http(
    served: Served, name: str, url: str, *extra: str
) -> AsyncIterator[ClientSession]:
    env = {**_env(served.home), "AEGISFLOW_API_KEY": AGENT_KEY, "AEGISFLOW_SESSION": "mcp-http"}
    params = StdioServerParameters(
        command=str(BIN / "aegisflow"),
        args=["mcp-proxy", "--name", name, "--service", served.url, "--url", url, *extra],
        env=env,
    )
    async with stdio_client(params) as (read, write):
        info = Implementation(name="claude-code", version="2.1.0")
        async with ClientSession(read, write, client_info=info) as client:
            await client.initialize()
            yield client


@pytest.mark.skipif(not SERVERS.is_dir(), reason="npm MCP servers missing")
async def test_server_everything_over_streamable_http(
    service: Served, everything_http: str
) -> None:
    seen: list[float] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append(value)

    async with proxied_http(service, "everything", everything_http) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {"echo", "get-sum", "trigger-long-running-operation"}
        answer = await client.call_tool("echo", {"message": "over http"})
        assert answer.content[0].text == "Echo: over http"  # type: ignore[union-attr]
        done = await client.call_tool(
            "trigger-long-running-operation",
            {"duration": 1, "steps": 3},
            progress_callback=progress,
        )
        assert not done.is_error
    assert len(seen) >= 2
    recorded = entries(service, "mcp-http")
    echo = next(e for e in recorded if e["type"] == "decision")
    assert echo["tool"] == "everything.echo"
    results = [e for e in recorded if e["type"] == "result"]
    assert echo["envelope"]["envelope_id"] in {r["envelope_id"] for r in results}


class Remote:
    """A Streamable HTTP MCP server that wants the policy's credential on ``whoami``."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def end(self, request: web.Request) -> web.Response:
        self.calls.append({"method": "DELETE", "authorization": None, "session": None})
        return web.Response(status=204)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        message = await request.json()
        self.calls.append(
            {
                "method": message.get("method"),
                "authorization": request.headers.get("Authorization"),
                "session": request.headers.get("Mcp-Session-Id"),
                "protocol": request.headers.get("MCP-Protocol-Version"),
            }
        )
        method, request_id = message.get("method"), message.get("id")
        if method == "initialize":
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "remote", "version": "1"},
            }
            return web.json_response(
                {"jsonrpc": "2.0", "id": request_id, "result": result},
                headers={"Mcp-Session-Id": "remote-session-1"},
            )
        if request_id is None:
            return web.Response(status=202)
        if request.headers.get("Mcp-Session-Id") != "remote-session-1":
            return web.Response(status=404)
        if method == "tools/list":
            tools = [
                {"name": n, "inputSchema": {"type": "object"}} for n in ("echo", "whoami", "wipe")
            ]
            return web.json_response(
                {"jsonrpc": "2.0", "id": request_id, "result": {"tools": tools}}
            )
        name = message["params"]["name"]
        if name == "whoami" and request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.Response(status=401)
        text = "you hold the delivered token" if name == "whoami" else "echo"
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        note = {"jsonrpc": "2.0", "method": "notifications/message",
                "params": {"level": "info", "data": "working"}}  # fmt: skip
        answer = {"jsonrpc": "2.0", "id": request_id,
                  "result": {"content": [{"type": "text", "text": text}]}}  # fmt: skip
        for event in (note, answer):
            await response.write(b"event: message\ndata: " + json.dumps(event).encode() + b"\n\n")
        await response.write_eof()
        return response


async def test_the_delivered_credential_rides_on_that_call_only(
    service: Served, aiohttp_server: Any
) -> None:
    remote = Remote()
    app = web.Application()
    app.router.add_post("/mcp", remote.handle)
    app.router.add_delete("/mcp", remote.end)
    server = await aiohttp_server(app)
    async with proxied_http(service, "remote", str(server.make_url("/mcp"))) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {"echo", "whoami"}  # wipe: no rule allows it, default block
        assert "echo" in str((await client.call_tool("echo", {})).content)
        who = await client.call_tool("whoami", {})
        assert who.content[0].text == "you hold the delivered token"  # type: ignore[union-attr]
    by_method = [(c["method"], c["authorization"]) for c in remote.calls]
    assert ("tools/call", f"Bearer {TOKEN}") in by_method
    assert [a for m, a in by_method if a] == [f"Bearer {TOKEN}"]  # on that call alone
    later = [c for c in remote.calls if c["method"] not in ("initialize", "DELETE")]
    assert all(c["session"] == "remote-session-1" for c in later)
    assert all(c["protocol"] for c in later)
    recorded = entries(service, "mcp-http")
    grant = next(e for e in recorded if e.get("tool") == "remote.whoami")["credential"]
    assert grant["type"] == "static"
    assert TOKEN not in json.dumps(recorded)
