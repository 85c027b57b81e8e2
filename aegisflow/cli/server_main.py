"""``aegisflow``: the service side (the single ledger writer)."""

from __future__ import annotations

from aegisflow.cli import ledger
from aegisflow.cli.app import main_for, new_app
from aegisflow.cli.mcp_proxy import mcp_proxy
from aegisflow.cli.serve import serve

app = new_app("AegisFlow service: the single writer of the evidence ledger.")
app.add_typer(ledger.app, name="ledger")
app.command("serve")(serve)
app.command("mcp-proxy")(mcp_proxy)


def main() -> None:
    main_for(app)
