"""``aegisctl``: the operator and auditor command line."""

from __future__ import annotations

from aegisflow.cli import client, demo, evidence, keys, policy
from aegisflow.cli.app import main_for, new_app

app = new_app("AegisFlow control: keys, evidence, policies (and, with the service, approvals).")
app.add_typer(keys.app, name="keys")
app.add_typer(evidence.app, name="evidence")
app.add_typer(policy.app, name="policy")
app.command("test-action")(client.send_action)
app.command("approvals")(client.approvals)
app.command("approve")(client.approve)
app.command("deny")(client.deny)
app.command("demo")(demo.demo)


def main() -> None:
    main_for(app)
