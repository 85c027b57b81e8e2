"""The MCP bridge's fault cases, on the wire: the proxy as a process, raw JSON-RPC lines.

Clear errors, no hang, nothing allowed that should not be: a service that is down, slow
or talking nonsense; an upstream that crashes, never answers or writes garbage;
malformed and oversized messages; unknown and unnameable tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from serve_helpers import ADMIN_KEY, AGENT_KEY, ROOT, Served, make_home
from test_cli import AEGISCTL, BIN, _env, run
from test_mcp_proxy import EVERYTHING, SERVERS, entries, service  # noqa: F401 - a fixture

from aegisflow.mcp.proxy import Proxy
from aegisflow.mcp.service import Service, ServiceUnavailable
from aegisflow.policy.normalize import McpServer

FAKE = [sys.executable, str(ROOT / "tests" / "mcp" / "fake_server.py")]
INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "claude-code", "version": "2"},
    },
}


class Wire:
    """The proxy as a child process, spoken to in raw lines."""

    def __init__(self, url: str, upstream: list[str], *extra: str, home: Path) -> None:
        env = {**_env(home), "AEGISFLOW_API_KEY": AGENT_KEY, "AEGISFLOW_SESSION": "mcp-faults"}
        with (home.parent / "proxy.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "aegisflow"), "mcp-proxy", "--name", upstream_name(upstream),
                 "--service", url, *extra, "--", *upstream],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
            )  # fmt: skip
        self.home = home
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def send(self, message: object) -> None:
        self.raw(json.dumps(message).encode() + b"\n")

    def raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def answer(self, request_id: object, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.lines:
                if message.get("id") == request_id and "method" not in message:
                    return message
            time.sleep(0.02)
        log = (self.home.parent / "proxy.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"no answer to {request_id!r}; got {self.lines}; log: {log}")

    def call(self, request_id: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self.send(
            {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
             "params": {"name": tool, "arguments": arguments}}
        )  # fmt: skip
        return self.answer(request_id)

    def close(self) -> int:
        assert self.process.stdin is not None
        if not self.process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.process.stdin.close()
        code = self.process.wait(timeout=15)
        self._reader.join(timeout=5)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


def upstream_name(upstream: list[str]) -> str:
    return "fake" if upstream[:2] == FAKE else "everything"


@contextmanager
def wire(url: str, upstream: list[str], *extra: str, home: Path) -> Iterator[Wire]:
    proxy = Wire(url, upstream, *extra, home=home)
    try:
        proxy.send(INIT)
        assert "result" in proxy.answer(0), proxy.lines
        yield proxy
    finally:
        proxy.close()


def test_malformed_batched_and_oversized_messages_get_errors_and_the_line_survives(
    service: Served,
) -> None:
    with wire(service.url, [*FAKE, "echo"], "--max-message", "4096", home=service.home) as p:
        p.raw(b"{not json\n")
        p.send([{"jsonrpc": "2.0", "id": 7, "method": "tools/list"}])
        p.raw(b'{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{"pad":"'
              + b"x" * 10_000 + b'"}}\n')  # fmt: skip
        answer = p.call(9, "echo", {"still": "working"})
        assert answer["result"]["content"][0]["text"] == '{"still": "working"}'
        errors = [m["error"] for m in p.lines if m.get("id") is None and "error" in m]
        assert [e["code"] for e in errors] == [-32700, -32600, -32600]
        assert "too large" in errors[2]["message"]
        assert not any(m.get("id") in (7, 8) for m in p.lines)  # none reached the server


def test_upstream_garbage_is_dropped(service: Served) -> None:
    with wire(service.url, [*FAKE, "garbage"], home=service.home) as p:
        answer = p.call(1, "echo", {"a": 1})
        assert answer["result"]["content"][0]["text"] == '{"a": 1}'


def test_an_upstream_crash_answers_the_call_and_ends_the_proxy(service: Served) -> None:
    with wire(service.url, [*FAKE, "crash"], home=service.home) as p:
        answer = p.call(1, "echo", {"a": 1})
        assert answer["error"]["code"] == -32004
        assert "stopped" in answer["error"]["message"]
        assert p.process.wait(timeout=15) == 1
    time.sleep(0.5)
    recorded = entries(service, "mcp-faults")
    assert [(e["type"], e.get("summary")) for e in recorded][-1] == ("result", "upstream-stopped")


def test_an_upstream_that_never_answers_times_out(service: Served) -> None:
    with wire(service.url, [*FAKE, "silent"], "--call-timeout", "1", home=service.home) as p:
        started = time.monotonic()
        answer = p.call(1, "echo", {"a": 1})
        assert answer["error"]["code"] == -32004
        assert "did not answer tools/call within 1 s" in answer["error"]["message"]
        assert time.monotonic() - started < 10


@pytest.mark.skipif(not SERVERS.is_dir(), reason="npm MCP servers missing")
def test_unknown_and_unnameable_tools_never_run(service: Served) -> None:
    with wire(service.url, EVERYTHING, home=service.home) as p:
        unknown = p.call(1, "does-not-exist", {})
        assert unknown["error"]["code"] == -32001  # the policy's default: block
        odd = p.call(2, "\u00e9cho", {"message": "x"})
        assert odd["error"]["code"] == -32003
        assert "could not check" in odd["error"]["message"]
        p.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": "echo", "arguments": [1, 2]}})  # fmt: skip
        assert p.answer(3)["error"]["code"] == -32003


@contextmanager
def silent_service() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def garbage_service() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>surprise</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", ["down", "silent", "garbage"])
def test_a_service_that_cannot_decide_refuses_the_call(tmp_path: Path, kind: str) -> None:
    home = make_home(tmp_path)
    with (
        stand_in_service(kind) as url,
        wire(url, [*FAKE, "echo"], "--timeout", "1", home=home) as p,
    ):
        started = time.monotonic()
        answer = p.call(1, "echo", {"a": 1})
        assert answer["error"]["code"] == -32003
        assert "could not check this call, so it was not run" in answer["error"]["message"]
        assert time.monotonic() - started < 10
        assert not any("result" in m and m.get("id") == 1 for m in p.lines)


@contextmanager
def stand_in_service(kind: str) -> Iterator[str]:
    if kind == "down":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    elif kind == "silent":
        with silent_service() as url:
            yield url
    else:
        with garbage_service() as url:
            yield url


def test_everything_the_faults_wrote_verifies(service: Served) -> None:
    with wire(service.url, [*FAKE, "crash"], home=service.home) as p:
        p.call(1, "echo", {})
    time.sleep(0.5)
    verified = run(
        AEGISCTL, "evidence", "verify", "--server", service.url, "--api-key", ADMIN_KEY,
        home=service.home,
    )  # fmt: skip
    assert verified.code == 0, verified


def test_refusals_can_be_tool_results_for_clients_that_show_only_those(
    service: Served,
) -> None:
    with wire(
        service.url, [*FAKE, "echo"], "--refusals-as-results", home=service.home
    ) as p:  # fake.echo is allowed; anything else the policy blocks by default
        answer = p.call(1, "format-disk", {})
        result = answer["result"]
        assert result["isError"] is True
        assert "AegisFlow blocked fake.format-disk" in result["content"][0]["text"]
        assert result["_meta"]["aegisflow"]["code"] == -32001
        assert p.call(2, "echo", {"a": 1})["result"]["content"][0]["text"] == '{"a": 1}'


@pytest.mark.skipif(not SERVERS.is_dir(), reason="npm MCP servers missing")
@pytest.mark.parametrize("revision", ["2025-06-18", "2025-11-25"])
def test_the_protocol_revision_passes_through(service: Served, revision: str) -> None:
    proxy = Wire(service.url, EVERYTHING, home=service.home)
    try:
        proxy.send({**INIT, "params": {**INIT["params"], "protocolVersion": revision}})
        assert proxy.answer(0)["result"]["protocolVersion"] == revision
        proxy.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        answer = proxy.call(1, "echo", {"message": revision})
        assert answer["result"]["content"][0]["text"] == f"Echo: {revision}"
    finally:
        proxy.close()


def test_a_crashed_upstream_is_restarted_and_initialized_again(
    service: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MARKER", str(tmp_path / "crashed"))
    with wire(service.url, [*FAKE, "crash-once"], "--restarts", "1", home=service.home) as p:
        first = p.call(1, "echo", {"n": 1})
        assert first["error"]["code"] == -32004
        second = p.call(2, "echo", {"n": 2})  # the restarted server, initialized by the proxy
        assert second["result"]["content"][0]["text"] == '{"n": 2}'
        assert p.process.poll() is None
        assert not any(str(m.get("id", "")).startswith("aegisflow-") for m in p.lines)


@pytest.mark.parametrize(
    ("client", "agent"),
    [("Claude Code", "Claude-Code"), ("-é-x", "x"), ("....", "mcp-client"), ("", "mcp-client")],
)
def test_odd_client_names_become_safe_agent_names(client: str, agent: str) -> None:
    proxy = Proxy(McpServer(name="x"), None, "s", None, None)  # type: ignore[arg-type]
    proxy._note_client({"clientInfo": {"name": client}})
    assert proxy.agent == agent


class _Recorder:
    """A service that records the results reported to it, once ``gate`` opens."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.reported: list[str] = []
        self.sent = asyncio.Event()
        self.gate = gate

    async def record_results(self, reports: list[dict[str, Any]]) -> list[str]:
        self.sent.set()
        if self.gate is not None:
            await self.gate.wait()
        self.reported.extend(r["envelope_id"] for r in reports)
        return []


def _reporting_to(service: _Recorder) -> Proxy:
    async def nowhere(*_args: object) -> None:
        pass

    return Proxy(McpServer(name="x"), service, "s", nowhere, nowhere)  # type: ignore[arg-type]


async def test_results_owed_at_close_are_reported_not_dropped() -> None:
    service = _Recorder()
    proxy = _reporting_to(service)
    await proxy._report("e-1", "ok", b"{}", 2, failed=False)
    await proxy._report("e-2", "ok", b"{}", 2, failed=False)
    assert service.reported == []  # lingering, to be reported together
    await proxy.close()  # the agent left at once
    assert service.reported == ["e-1", "e-2"]


async def test_a_report_already_on_its_way_at_close_is_waited_for() -> None:
    release = asyncio.Event()
    service = _Recorder(gate=release)
    proxy = _reporting_to(service)
    await proxy._report("e-1", "ok", b"{}", 2, failed=False)
    await service.sent.wait()  # the linger is over and the report is with the service
    closing = asyncio.create_task(proxy.close())
    await asyncio.sleep(0.05)
    assert not closing.done()  # the service client must outlive the request
    release.set()
    await closing
    assert service.reported == ["e-1"]


async def test_results_the_service_refuses_are_named_and_garbage_is_an_error(
    aiohttp_server: Any,
) -> None:
    answers: list[Any] = []

    async def results(request: web.Request) -> web.Response:
        if not answers:
            return web.json_response({"error": {"code": "x", "message": "down"}}, status=503)
        return web.json_response({"results": answers.pop()})

    app = web.Application()
    app.router.add_post("/v1/results", results)
    server = await aiohttp_server(app)
    reports = [{"envelope_id": name} for name in ("a", "b", "c")]
    hash_ = "ab" * 32
    refused = {"code": "result-unexpected", "message": "no allowed call b of yours"}
    async with Service(str(server.make_url("")), "k", session="s", timeout=5) as service:
        answers.append([{"envelope_id": "a", "evidence_hash": hash_}] * 2)  # one missing
        answers.append(
            [
                {"envelope_id": "a", "evidence_hash": hash_},
                {"envelope_id": "b", "error": refused},
                7,
            ]
        )
        assert await service.record_results(reports) == [
            "b: no allowed call b of yours",
            "c: no answer",
        ]
        for _ in range(2):  # too few answers, then a 503
            with pytest.raises(ServiceUnavailable):
                await service.record_results(reports)


async def test_results_go_one_by_one_to_a_service_without_the_batch(aiohttp_server: Any) -> None:
    recorded: list[tuple[str, dict[str, Any]]] = []

    async def one(request: web.Request) -> web.Response:
        envelope_id = request.match_info["id"]
        if envelope_id == "gone":
            refused = {"code": "result-unexpected", "message": "no such call"}
            return web.json_response({"error": refused}, status=404)
        recorded.append((envelope_id, await request.json()))
        return web.json_response({"envelope_id": envelope_id, "evidence_hash": "ab" * 32})

    async def unknown(_request: web.Request) -> web.Response:  # as the older service says it
        return web.json_response({"error": {"code": "http", "message": "Not Found"}}, status=404)

    app = web.Application()
    app.router.add_post("/v1/actions/{id}/result", one)
    app.router.add_post("/v1/results", unknown)
    server = await aiohttp_server(app)
    reports = [{"envelope_id": e, "summary": "ok"} for e in ("a", "gone", "b")]
    async with Service(str(server.make_url("")), "k", session="s", timeout=5) as service:
        assert await service.record_results(reports) == ["gone: no such call"]
    assert recorded == [("a", {"summary": "ok"}), ("b", {"summary": "ok"})]
