"""``aegisflow``: the service side (the single ledger writer)."""

from __future__ import annotations

from aegisflow.cli import ledger
from aegisflow.cli.app import main_for, new_app

app = new_app("AegisFlow service: the single writer of the evidence ledger.")
app.add_typer(ledger.app, name="ledger")


def main() -> None:
    main_for(app)
