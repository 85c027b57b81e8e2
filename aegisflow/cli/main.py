"""``aegisctl``: the operator and auditor command line.

``aegisctl hook <agent>`` runs before every tool call an agent makes, so it takes a fast
path that imports only the hook (standard library, no typer or rich): start-up is the
agent's latency. Everything else builds the full command set.
"""

from __future__ import annotations

import sys

from aegisflow.hooks import AGENT_NAMES

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the hook 3 ms

if TYPE_CHECKING:
    import typer


def build() -> typer.Typer:
    """Every ``aegisctl`` command."""
    from aegisflow.cli import client, demo, evidence, hook, keys, policy  # noqa: PLC0415
    from aegisflow.cli.app import new_app  # noqa: PLC0415

    app = new_app("AegisFlow control: keys, evidence, policies (and, with the service, approvals).")
    app.add_typer(keys.app, name="keys")
    app.add_typer(evidence.app, name="evidence")
    app.add_typer(policy.app, name="policy")
    app.add_typer(hook.app, name="hook")
    app.command("test-action")(client.send_action)
    app.command("approvals")(client.approvals)
    app.command("approve")(client.approve)
    app.command("deny")(client.deny)
    app.command("demo")(demo.demo)
    return app


def main() -> None:
    args = sys.argv[1:]
    if (
        args[:1] == ["hook"]
        and args[1:2]
        and args[1] in AGENT_NAMES
        and not {"-h", "--help"} & set(args)
    ):
        from aegisflow.hooks.run import main as hook  # noqa: PLC0415 - the fast path

        sys.exit(hook(args[1], args[2:]))
    from aegisflow.cli.app import main_for  # noqa: PLC0415

    main_for(build())
