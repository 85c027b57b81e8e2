"""``aegisflow``: the service side (the single ledger writer)."""

from __future__ import annotations

from aegisflow.cli import ledger
from aegisflow.cli.app import main_for, new_app
from aegisflow.cli.serve import serve

app = new_app("AegisFlow service: the single writer of the evidence ledger.")
app.add_typer(ledger.app, name="ledger")
app.command("serve")(serve)


def main() -> None:
    main_for(app)
