"""``aegisflow mcp-proxy``: what an agent launches instead of an MCP server."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from aegisflow.errors import InputError
from aegisflow.eventloop import new_event_loop
from aegisflow.ledger.entry import validate_session_id
from aegisflow.mcp.config import ConfigError, UpstreamConfig, load_config
from aegisflow.mcp.proxy import MAX_LINE
from aegisflow.mcp.run import Settings, run_http, run_stdio
from aegisflow.mcp.service import DEFAULT_TIMEOUT
from aegisflow.policy.normalize import McpServer

CALL_TIMEOUT = 300.0


def mcp_proxy(
    command: Annotated[
        list[str] | None, typer.Argument(help="The upstream MCP server command, after --")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Server name: tools become NAME.TOOL")] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Bridge configuration file (YAML); with --server instead of -- CMD"),
    ] = None,
    server_name: Annotated[
        str | None, typer.Option("--server", help="Which server of --config to proxy")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="A Streamable HTTP MCP server to proxy instead of -- COMMAND"),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(help="A header for every request to --url: NAME=VALUE (repeatable)"),
    ] = None,
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
        float | None,
        typer.Option(help=f"Seconds to wait for the service (default {DEFAULT_TIMEOUT:g})"),
    ] = None,
    call_timeout: Annotated[
        float | None,
        typer.Option(help=f"Seconds the MCP server has to answer (default {CALL_TIMEOUT:g})"),
    ] = None,
    max_message: Annotated[
        int | None, typer.Option(help="Longest message relayed either way, in bytes")
    ] = None,
    restarts: Annotated[
        int, typer.Option(help="Restart the MCP server this many times if it exits")
    ] = 0,
    refusals_as_results: Annotated[
        bool,
        typer.Option(help="Answer blocks and reviews as tool results with isError, not errors"),
    ] = False,
) -> None:
    """Proxy an MCP server over stdio, sending every tools/call through AegisFlow first.

    Either --name NAME -- COMMAND..., or --config FILE --server NAME. The agent key comes
    from $AEGISFLOW_API_KEY or the configuration's api_key_file, never the command line.
    """
    file_key, file_service, file_timeout = None, None, None
    if config is not None:
        if command or name or url:
            raise InputError("give --config with --server, or --name with -- COMMAND, not both")
        bridge = load_config(config)
        upstream = bridge.servers.get(server_name or "")
        if upstream is None:
            known = ", ".join(sorted(bridge.servers))
            raise ConfigError(f"--server must name one of the servers in {config}: {known}")
        file_key, file_service, file_timeout = bridge.api_key(), bridge.service, bridge.timeout
    else:
        if not name or bool(command) == bool(url):
            raise InputError(
                "give --name NAME with -- COMMAND... or --url URL (or --config FILE --server NAME)"
            )
        upstream = UpstreamConfig(
            server=McpServer(name=name),
            command=tuple(command or ()),
            url=url,
            headers=dict(_pair(h, "--header") for h in header or []),
        )
    upstream = _with_options(upstream, target_arg, capability, call_timeout, max_message)
    api_key = os.environ.get("AEGISFLOW_API_KEY") or file_key
    if not api_key:
        raise InputError("no API key", hint="set AEGISFLOW_API_KEY to the agent's key")
    chosen = session or os.environ.get("AEGISFLOW_SESSION")
    if chosen is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        chosen = f"mcp-{upstream.server.name}-{stamp}-{secrets.token_hex(3)}"
    validate_session_id(chosen)
    url_of_service = (
        service or os.environ.get("AEGISFLOW_URL") or file_service or "http://127.0.0.1:8081"
    )
    settings = Settings(
        service_url=url_of_service,
        api_key=api_key,
        session=chosen,
        timeout=timeout or file_timeout or DEFAULT_TIMEOUT,
        call_timeout=upstream.call_timeout,
        max_message=upstream.max_message,
        refusals_as_results=refusals_as_results or upstream.refusals_as_results,
    )
    if upstream.url is not None:
        run = run_http(upstream.server, upstream.url, settings, headers=upstream.headers)
    else:
        restart = max(restarts, upstream.restarts)
        run = run_stdio(
            upstream.server, upstream.command, settings, env=upstream.env, restarts=restart
        )
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        code = runner.run(run)
    raise typer.Exit(code)


def _with_options(
    upstream: UpstreamConfig,
    target_arg: list[str] | None,
    capability: list[str] | None,
    call_timeout: float | None,
    max_message: int | None,
) -> UpstreamConfig:
    """The command line's settings over the file's."""
    server = upstream.server
    if target_arg:
        server = replace(server, target_args=tuple(tuple(a.split(",")) for a in target_arg))
    if capability:
        overrides = dict(_pair(c, "--capability") for c in capability)
        server = replace(server, capabilities={**server.capabilities, **overrides})
    return replace(
        upstream,
        server=server,
        call_timeout=call_timeout or upstream.call_timeout,
        max_message=max_message or upstream.max_message or MAX_LINE,
    )


def _pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise InputError(f"{option} takes KEY=VALUE, not {text!r}")
    return key, value
