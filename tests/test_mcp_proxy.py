"""The MCP bridge against real MCP servers from npm, driven by the official Python SDK.

``aegisflow serve`` runs as a process on loopback under ``tests/mcp/policy.yaml``; the SDK
client launches ``aegisflow mcp-proxy`` the way Claude Code would, and the proxy launches
``@modelcontextprotocol/server-everything`` or ``server-filesystem`` (installed by
``scripts/bootstrap`` from ``tests/mcp/package.json``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitResult,
    Implementation,
    TextContent,
)
from serve_helpers import ADMIN_KEY, AGENT_KEY, ALICE_KEY, ROOT, Served, http, make_home, serving
from test_cli import AEGISCTL, BIN, _env, run

SERVERS = ROOT / "tests" / "mcp" / "node_modules" / "@modelcontextprotocol"
EVERYTHING = ["node", str(SERVERS / "server-everything" / "dist" / "index.js"), "stdio"]
FILESYSTEM = ["node", str(SERVERS / "server-filesystem" / "dist" / "index.js")]
POLICY = ROOT / "tests" / "mcp" / "policy.yaml"

pytestmark = pytest.mark.skipif(
    not SERVERS.is_dir() and not os.environ.get("CI"),  # in CI a missing server must fail
    reason="npm MCP servers missing: run scripts/bootstrap",
)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Served]:
    home = make_home(tmp_path)
    with serving(home, "--policy", str(POLICY)) as served:
        yield served


@asynccontextmanager
async def proxied(
    served: Served, name: str, upstream: list[str], *, session: str = "mcp-test-1", **kw: Any
) -> AsyncIterator[ClientSession]:
    env = {**_env(served.home), "AEGISFLOW_API_KEY": AGENT_KEY, "AEGISFLOW_SESSION": session}
    params = StdioServerParameters(
        command=str(BIN / "aegisflow"),
        args=["mcp-proxy", "--name", name, "--service", served.url, "--", *upstream],
        env=env,
    )
    async with stdio_client(params) as (read, write):
        client = ClientSession(
            read, write, client_info=Implementation(name="claude-code", version="2.1.0"), **kw
        )
        async with client:
            await client.initialize()
            yield client


def entries(served: Served, session: str) -> list[dict[str, Any]]:
    shown = http(served, "GET", f"/admin/v1/sessions/{session}", ADMIN_KEY)
    return [e["body"] | {"type": e["type"]} for e in shown["entries"]]


async def test_tools_list_and_an_allowed_call_with_its_result(service: Served) -> None:
    async with proxied(service, "everything", EVERYTHING) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        # get-env is always blocked, and so is every tool no rule names (default block).
        assert tools == {"echo", "get-sum", "trigger-long-running-operation"}
        answer = await client.call_tool("echo", {"message": "through the bridge"})
        assert answer.content[0].text == "Echo: through the bridge"  # type: ignore[union-attr]
        total = await client.call_tool("get-sum", {"a": 2, "b": 3})
        assert "5" in total.content[0].text  # type: ignore[union-attr]
    recorded = entries(service, "mcp-test-1")
    decisions = [e for e in recorded if e["type"] == "decision"]
    results = {e["envelope_id"]: e for e in recorded if e["type"] == "result"}
    assert [(d["tool"], d["decision"]) for d in decisions] == [
        ("everything.echo", "allow"),
        ("everything.get-sum", "allow"),
    ]
    assert decisions[0]["envelope"]["actor"]["agent"] == "claude-code"
    assert decisions[0]["envelope"]["parameters"] == {"message": "through the bridge"}
    # Each allowed call has its result (reported a moment later, possibly batched).
    for decision in decisions:
        result = results[decision["envelope"]["envelope_id"]]
        assert (result["tool"], result["summary"]) == (decision["tool"], "ok")


async def test_a_blocked_call_is_a_readable_error_and_never_runs(service: Served) -> None:
    async with proxied(service, "everything", EVERYTHING) as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool("get-env", {})
        assert caught.value.error.code == -32001
        message = caught.value.error.message
        assert "AegisFlow blocked everything.get-env" in message
        assert "environment, which holds credentials" in message
        assert "Instead: ask the user for the one value you need" in message
        # The connection is still good after a refusal.
        assert (await client.call_tool("echo", {"message": "x"})).content
    recorded = entries(service, "mcp-test-1")
    assert [(e["type"], e.get("decision")) for e in recorded][:1] == [("decision", "block")]
    assert not any(e["type"] == "result" and e["tool"] == "everything.get-env" for e in recorded)


async def test_a_reviewed_write_runs_once_after_approval(service: Served, tmp_path: Path) -> None:
    root = tmp_path / "work"
    (root / "notes").mkdir(parents=True)
    note = root / "notes" / "plan.md"
    async with proxied(service, "fs", [*FILESYSTEM, str(root)]) as client:
        with pytest.raises(MCPError) as outside:
            await client.call_tool("write_file", {"path": str(root / "x.txt"), "content": "x"})
        assert outside.value.error.code == -32001
        assert not (root / "x.txt").exists()

        call = {"path": str(note), "content": "# Plan\n"}
        with pytest.raises(MCPError) as review:
            await client.call_tool("write_file", call)
        assert review.value.error.code == -32002
        message = review.value.error.message
        assert "needs a human's approval" in message
        assert "Retry exactly the same call after it is approved" in message
        approval_id = review.value.error.data["envelope_id"]  # type: ignore[index]
        assert approval_id in message
        assert not note.exists()

        with pytest.raises(MCPError) as early:
            await client.call_tool("write_file", call)
        assert "still pending" in early.value.error.message

        approved = http(
            service,
            "POST",
            f"/admin/v1/approvals/{approval_id}/approve",
            ALICE_KEY,
            {"comment": "ok"},
        )
        assert approved["status"] == "approved"
        done = await client.call_tool("write_file", call)
        assert not done.is_error
        assert note.read_text() == "# Plan\n"

        with pytest.raises(MCPError) as again:
            await client.call_tool("write_file", call)
        assert again.value.error.code == -32002  # single use: a new review
    kinds = [
        (e["type"], e.get("decision"), e.get("matched_rule"))
        for e in entries(service, "mcp-test-1")
    ]
    assert ("decision", "allow", f"approved:{approval_id}") in kinds
    assert kinds.count(("approval", None, None)) == 1
    verified = run(
        AEGISCTL, "evidence", "verify", "--session", "mcp-test-1",
        "--server", service.url, "--api-key", ADMIN_KEY, home=service.home,
    )  # fmt: skip
    assert verified.code == 0, verified


async def test_progress_notifications_pass_through(service: Served) -> None:
    seen: list[float] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append(value)

    async with proxied(service, "everything", EVERYTHING) as client:
        answer = await client.call_tool(
            "trigger-long-running-operation",
            {"duration": 1, "steps": 4},
            progress_callback=progress,
        )
        assert not answer.is_error
    assert len(seen) >= 3
    assert seen == sorted(seen)


async def test_the_service_unreachable_refuses_the_call(service: Served) -> None:
    stopped = Served(service.home, "http://127.0.0.1:9", service.process, service.log)
    async with proxied(stopped, "everything", EVERYTHING) as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool("echo", {"message": "x"})
        assert caught.value.error.code == -32003
        assert "could not check this call, so it was not run" in caught.value.error.message


async def test_sampling_and_elicitation_requests_reach_the_client(service: Served) -> None:
    asked: list[str] = []

    async def sample(context: Any, params: CreateMessageRequestParams) -> CreateMessageResult:
        asked.append(f"sampling: {params.messages[0].content.text}")  # type: ignore[union-attr]
        return CreateMessageResult(
            role="assistant", content=TextContent(type="text", text="a sampled answer"), model="m"
        )

    async def elicit(context: Any, params: Any) -> ElicitResult:
        asked.append(f"elicitation: {params.message}")
        return ElicitResult(action="decline")

    async with proxied(
        service, "everything", EVERYTHING, sampling_callback=sample, elicitation_callback=elicit
    ) as client:
        sampled = await client.call_tool("trigger-sampling-request", {"prompt": "two words"})
        assert "a sampled answer" in str(sampled.content)
        elicited = await client.call_tool("trigger-elicitation-request", {})
        assert "decline" in str(elicited.content).lower()
    assert [a.split(":")[0] for a in asked] == ["sampling", "elicitation"]
    assert "two words" in asked[0]


async def test_a_cancelled_call_leaves_the_connection_working(service: Served) -> None:
    progressed = anyio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        progressed.set()

    async with proxied(service, "everything", EVERYTHING) as client:
        async with anyio.create_task_group() as group:

            async def long() -> None:
                await client.call_tool(
                    "trigger-long-running-operation",
                    {"duration": 20, "steps": 20},
                    progress_callback=progress,
                )

            group.start_soon(long)
            with anyio.fail_after(10):
                await progressed.wait()
            group.cancel_scope.cancel()  # the SDK sends notifications/cancelled
        with anyio.fail_after(5):
            answer = await client.call_tool("echo", {"message": "after the cancel"})
        assert answer.content[0].text == "Echo: after the cancel"  # type: ignore[union-attr]
