"""``aegisflow serve``: the governance service on loopback, on the embedded defaults."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from aiohttp import web

from aegisflow.auth import ApiKeys
from aegisflow.cli.app import HomeOption, stderr
from aegisflow.cli.policy import read_policy
from aegisflow.config import Paths
from aegisflow.errors import OperationalError
from aegisflow.gateway.app import create_app
from aegisflow.keys import load_signer
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.service import Governance


def serve(
    home: HomeOption = None,
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless you mean it)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8081,
    policy: Annotated[
        Path | None, typer.Option(help="Policy file (default: policies/pr-writer.yaml)")
    ] = None,
    public_url: Annotated[
        str | None, typer.Option(help="Base URL in approval links (default http://localhost:PORT)")
    ] = None,
) -> None:
    """Evaluate, record and queue actions over HTTP (the single ledger writer)."""
    paths = Paths.from_env(home)
    compiled = read_policy(policy or paths.default_policy)
    if not paths.api_keys.exists():
        raise OperationalError(
            f"no API keys at {paths.api_keys}",
            hint="create one: aegisctl keys api-key --principal NAME --role agent",
        )
    keys = ApiKeys.load(paths.api_keys)
    signer = load_signer(paths.ledger_key)
    ledger = Ledger.open(GitStorage(paths.ledger, writable=True), signer)
    governance = Governance(policy=compiled, ledger=ledger)
    restored = governance.restore()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stderr.print(
        f"aegisflow: policy {compiled.name} ({compiled.content_hash[:19]}...), "
        f"{restored} ledger entries, {len(governance.queue.pending(governance.clock()))} "
        f"pending approvals; listening on http://{host}:{port}",
        markup=False,
    )
    app = create_app(governance, keys, base_url=public_url or f"http://localhost:{port}")
    try:
        web.run_app(app, host=host, port=port, print=None, handle_signals=True)
    finally:
        ledger.close()
