"""``aegisflow``: the service side (the single ledger writer) and the MCP bridge.

``aegisflow mcp-proxy`` is started by agents, once per MCP server and session, so it
takes a fast path that imports only the bridge: no ledger, no HTTP server, no policy
compiler (about half the memory and start-up time of the full command set).
"""

from __future__ import annotations

import sys

import typer

from aegisflow.cli.app import main_for, new_app, run

PROXY = "mcp-proxy"


def build() -> typer.Typer:
    """Every ``aegisflow`` command."""
    from aegisflow.cli import ledger  # noqa: PLC0415 - heavy: not for the proxy's fast path
    from aegisflow.cli.mcp_proxy import mcp_proxy  # noqa: PLC0415
    from aegisflow.cli.serve import serve  # noqa: PLC0415

    app = new_app("AegisFlow service: the single writer of the evidence ledger.")
    app.add_typer(ledger.app, name="ledger")
    app.command("serve")(serve)
    app.command(PROXY)(mcp_proxy)
    return app


def main() -> None:
    if sys.argv[1:2] == [PROXY]:
        from aegisflow.cli.mcp_proxy import mcp_proxy  # noqa: PLC0415 - the fast path

        proxy = new_app("AegisFlow service: the single writer of the evidence ledger.")
        proxy.callback()(lambda: None)  # a group, so the command keeps its name
        proxy.command(PROXY)(mcp_proxy)
        sys.exit(run(proxy, sys.argv[1:]))
    main_for(build())
