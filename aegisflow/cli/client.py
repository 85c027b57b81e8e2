"""``aegisctl test-action | approvals | approve | deny``: talk to a running service."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Annotated, Any

import typer
from rich.console import Console

from aegisflow.cli.status import Exit
from aegisflow.errors import InputError, OperationalError

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)

ServerOption = Annotated[
    str | None,
    typer.Option("--server", help="Service URL (default $AEGISFLOW_URL or http://127.0.0.1:8081)"),
]
KeyOption = Annotated[
    str | None, typer.Option("--api-key", help="API key (default $AEGISFLOW_API_KEY)")
]


def request(
    method: str, path: str, body: Any | None, *, server: str | None, api_key: str | None
) -> tuple[int, Any]:
    """One JSON request to the service.

    Raises:
        InputError: Without an API key.
        OperationalError: If the service cannot be reached or answers with non-JSON.
    """
    base = (server or os.environ.get("AEGISFLOW_URL") or "http://127.0.0.1:8081").rstrip("/")
    key = api_key or os.environ.get("AEGISFLOW_API_KEY")
    if not key:
        raise InputError("no API key", hint="pass --api-key or set AEGISFLOW_API_KEY")
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(  # noqa: S310 - the URL is the operator's own service
        base + path, data=data, method=method, headers={"X-API-Key": key}
    )
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise OperationalError(f"cannot reach the service at {base}: {reason}") from None
    try:
        return status, json.loads(raw)
    except ValueError:
        raise OperationalError(f"the service answered {status} without JSON") from None


def show(status: int, body: Any) -> None:
    out.print_json(data=body)
    if status >= 400:
        raise typer.Exit(Exit.INVALID_INPUT if status < 500 else Exit.ERROR)


def send_action(
    action: Annotated[str, typer.Option("--action", help="The action as JSON")],
    session: Annotated[str | None, typer.Option(help="Session id for the actor")] = None,
    server: ServerOption = None,
    api_key: KeyOption = None,
) -> None:
    """Send an action to POST /admin/v1/test-action and print the decision."""
    try:
        body = json.loads(action)
    except ValueError as e:
        raise InputError(f"--action is not valid JSON: {e}") from None
    if session is not None:
        if not isinstance(body, dict):
            raise InputError("--action must be a JSON object")
        body = {**body, "actor": {**body.get("actor", {}), "session": session}}
    show(*request("POST", "/admin/v1/test-action", body, server=server, api_key=api_key))


def approvals(server: ServerOption = None, api_key: KeyOption = None) -> None:
    """List the pending approvals."""
    show(*request("GET", "/admin/v1/approvals", None, server=server, api_key=api_key))


def approve(
    approval_id: Annotated[str, typer.Argument(help="The envelope id of the reviewed action")],
    comment: Annotated[str | None, typer.Option(help="Why it is fine")] = None,
    reviewer: Annotated[
        str | None, typer.Option(help="Must be the principal of the API key")
    ] = None,
    server: ServerOption = None,
    api_key: KeyOption = None,
) -> None:
    """Approve a pending action (recorded in the ledger with the reviewer and comment)."""
    body = {k: v for k, v in (("comment", comment), ("reviewer", reviewer)) if v is not None}
    path = f"/admin/v1/approvals/{approval_id}/approve"
    show(*request("POST", path, body, server=server, api_key=api_key))


def deny(
    approval_id: Annotated[str, typer.Argument(help="The envelope id of the reviewed action")],
    reason: Annotated[str, typer.Option(help="Why not")],
    server: ServerOption = None,
    api_key: KeyOption = None,
) -> None:
    """Deny a pending action."""
    path = f"/admin/v1/approvals/{approval_id}/deny"
    show(*request("POST", path, {"reason": reason}, server=server, api_key=api_key))
