"""``aegisctl test-action | approvals | approve | deny``: talk to a running service."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aegisflow.cli.status import Exit
from aegisflow.errors import InputError, OperationalError

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ServerOption = Annotated[
    str | None,
    typer.Option("--server", help="Service URL (default $AEGISFLOW_URL or http://127.0.0.1:8081)"),
]
KeyOption = Annotated[
    str | None, typer.Option("--api-key", help="API key (default $AEGISFLOW_API_KEY)")
]


@contextmanager
def _exchange(
    method: str, path: str, body: Any | None, *, server: str | None, api_key: str | None
) -> Iterator[tuple[str, int, Message, IO[bytes]]]:
    """Send one request; yield the base URL, the status, the headers and the body stream.

    Raises:
        InputError: Without an API key.
        OperationalError: If the service cannot be reached.
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
        response = urllib.request.urlopen(req, timeout=30)  # noqa: S310
    except urllib.error.HTTPError as e:
        response = e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise OperationalError(f"cannot reach the service at {base}: {reason}") from None
    with response:
        yield base, response.status, response.headers, response


def request(
    method: str, path: str, body: Any | None, *, server: str | None, api_key: str | None
) -> tuple[int, Any]:
    """One JSON request to the service.

    Raises:
        InputError: Without an API key.
        OperationalError: If the service cannot be reached or answers with non-JSON.
    """
    with _exchange(method, path, body, server=server, api_key=api_key) as (_, status, _, stream):
        raw = stream.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        raise OperationalError(f"the service answered {status} without JSON") from None


def download(path: str, out: Path, *, server: str | None, api_key: str | None) -> int:
    """Stream a GET of ``path`` into ``out`` (atomically); returns the bytes written.

    Raises:
        InputError: Without an API key, or if the service refuses the request.
        OperationalError: If the service cannot be reached or the transfer is cut short.
    """
    with _exchange("GET", path, None, server=server, api_key=api_key) as (
        base,
        status,
        headers,
        stream,
    ):
        if status != 200:
            try:
                error = json.loads(stream.read())["error"]
                message = f"{error['code']}: {error['message']}"
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {status}"
            raise (InputError if status < 500 else OperationalError)(
                f"{base}{path} refused: {message}"
            )
        expected = headers.get("Content-Length")
        partial = out.with_name(out.name + ".part")
        written = 0
        try:
            with partial.open("wb") as sink:
                while chunk := stream.read(1 << 16):
                    sink.write(chunk)
                    written += len(chunk)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise OperationalError(f"download from {base}{path} failed: {e}") from None
    if expected is not None and int(expected) != written:
        partial.unlink(missing_ok=True)
        raise OperationalError(
            f"download from {base}{path} stopped at {written} of {expected} bytes"
        )
    partial.replace(out)
    return written


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the service's JSON answer as is, on one line")
]


def show(
    status: int, body: Any, *, as_json: bool, table: Callable[[Any], Table] | None = None
) -> None:
    """Print an answer: as JSON (rich-highlighted on a terminal, as the walkthrough shows
    it), or with ``--json`` as one plain line; a table where one reads better. Errors go
    to stderr with their code, and set the exit status."""
    if as_json:
        print(json.dumps(body))
    elif status >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        err.print(f"error: {error.get('code')}: {error.get('message')}", markup=False)
        if error.get("hint"):
            err.print(f"hint: {error['hint']}", markup=False)
    elif table is not None:
        out.print(table(body))
    else:
        out.print_json(data=body)
    if status >= 400:
        raise typer.Exit(Exit.INVALID_INPUT if status < 500 else Exit.ERROR)


def send_action(
    action: Annotated[str, typer.Option("--action", help="The action as JSON")],
    session: Annotated[str | None, typer.Option(help="Session id for the actor")] = None,
    server: ServerOption = None,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
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
    answer = request("POST", "/admin/v1/test-action", body, server=server, api_key=api_key)
    show(*answer, as_json=as_json)


def _pending_table(body: Any) -> Table:
    table = Table("approval", "agent", "session", "tool", "target", "queued", "justification")
    for item in body.get("pending", []):
        actor = item.get("actor", {})
        table.add_row(
            item.get("envelope_id"), actor.get("agent"), actor.get("session"), item.get("tool"),
            item.get("target"), item.get("queued_at"), item.get("justification", ""),
        )  # fmt: skip
    if not body.get("pending"):
        table.caption = "no approvals pending"
    return table


def approvals(
    server: ServerOption = None, api_key: KeyOption = None, as_json: JsonOption = False
) -> None:
    """List the pending approvals."""
    answer = request("GET", "/admin/v1/approvals", None, server=server, api_key=api_key)
    show(*answer, as_json=as_json, table=_pending_table)


def approve(
    approval_id: Annotated[str, typer.Argument(help="The envelope id of the reviewed action")],
    comment: Annotated[str | None, typer.Option(help="Why it is fine")] = None,
    reviewer: Annotated[
        str | None, typer.Option(help="Must be the principal of the API key")
    ] = None,
    server: ServerOption = None,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Approve a pending action (recorded in the ledger with the reviewer and comment)."""
    body = {k: v for k, v in (("comment", comment), ("reviewer", reviewer)) if v is not None}
    path = f"/admin/v1/approvals/{approval_id}/approve"
    show(*request("POST", path, body, server=server, api_key=api_key), as_json=as_json)


def deny(
    approval_id: Annotated[str, typer.Argument(help="The envelope id of the reviewed action")],
    reason: Annotated[str, typer.Option(help="Why not")],
    server: ServerOption = None,
    api_key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deny a pending action."""
    path = f"/admin/v1/approvals/{approval_id}/deny"
    answer = request("POST", path, {"reason": reason}, server=server, api_key=api_key)
    show(*answer, as_json=as_json)
