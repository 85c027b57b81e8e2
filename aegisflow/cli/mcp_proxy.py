"""``aegisflow mcp-proxy``: what an agent launches instead of an MCP server."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import replace
from typing import Annotated

import typer

from aegisflow.errors import InputError
from aegisflow.eventloop import new_event_loop
from aegisflow.ledger.entry import validate_session_id
from aegisflow.mcp.proxy import MAX_LINE
from aegisflow.mcp.run import run_stdio
from aegisflow.mcp.service import DEFAULT_TIMEOUT
from aegisflow.policy.normalize import McpServer


def mcp_proxy(
    command: Annotated[list[str], typer.Argument(help="The upstream MCP server command, after --")],
    name: Annotated[str, typer.Option(help="Server name: tools become NAME.TOOL")],
    service: Annotated[
        str | None,
        typer.Option(help="Governance service URL (default $AEGISFLOW_URL or 127.0.0.1:8081)"),
    ] = None,
    session: Annotated[
        str | None,
        typer.Option(help="Session id (default $AEGISFLOW_SESSION, else one per connection)"),
    ] = None,
    target_arg: Annotated[
        list[str] | None,
        typer.Option(
            help="Argument names that form the target, comma-separated, first match wins "
            "(repeatable; default owner,repo then repository, repo, path, file_path, url, uri)"
        ),
    ] = None,
    capability: Annotated[
        list[str] | None,
        typer.Option(help="Capability override TOOL=CAPABILITY (repeatable)"),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the service before refusing a call")
    ] = DEFAULT_TIMEOUT,
    call_timeout: Annotated[
        float,
        typer.Option(help="Seconds the MCP server has to answer before the agent gets an error"),
    ] = 300.0,
    max_message: Annotated[
        int, typer.Option(help="Longest message relayed either way, in bytes")
    ] = MAX_LINE,
) -> None:
    """Proxy an MCP server over stdio, sending every tools/call through AegisFlow first.

    The agent key comes from $AEGISFLOW_API_KEY, never from the command line.
    """
    api_key = os.environ.get("AEGISFLOW_API_KEY")
    if not api_key:
        raise InputError("no API key", hint="set AEGISFLOW_API_KEY to the agent's key")
    chosen = session or os.environ.get("AEGISFLOW_SESSION")
    if chosen is None:
        chosen = f"mcp-{name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    validate_session_id(chosen)
    server = McpServer(
        name=name, capabilities=dict(_pair(c, "--capability") for c in capability or [])
    )
    if target_arg:
        server = replace(server, target_args=tuple(tuple(a.split(",")) for a in target_arg))
    url = service or os.environ.get("AEGISFLOW_URL") or "http://127.0.0.1:8081"
    run = run_stdio(
        server,
        command,
        service_url=url,
        api_key=api_key,
        session=chosen,
        timeout=timeout,
        call_timeout=call_timeout,
        max_message=max_message,
    )
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        code = runner.run(run)
    raise typer.Exit(code)


def _pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise InputError(f"{option} takes KEY=VALUE, not {text!r}")
    return key, value
