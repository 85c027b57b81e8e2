"""``aegisctl``: the operator and auditor command line."""

from __future__ import annotations

from aegisflow.cli import evidence, keys
from aegisflow.cli.app import main_for, new_app

app = new_app("AegisFlow control: keys, evidence (and, with the service, approvals).")
app.add_typer(keys.app, name="keys")
app.add_typer(evidence.app, name="evidence")


def main() -> None:
    main_for(app)
