"""The OpenAPI document: served, copied in docs/, complete, and fuzzed with schemathesis."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from policy_helpers import pack
from serve_helpers import ADMIN_KEY, AGENT_KEY, ALICE_KEY, AUDITOR_KEY, ROOT, make_home, serving
from test_cli import AEGISCTL, BIN, run
from test_gateway import keys

from aegisflow.gateway.app import create_app
from aegisflow.gateway.openapi import document
from aegisflow.ledger.ledger import Ledger
from aegisflow.service import Governance

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    )
)


def test_docs_hold_the_current_document() -> None:
    copy = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert copy == document(), (
        "docs/openapi.json is stale: "
        ".venv/bin/python -m aegisflow.gateway.openapi > docs/openapi.json"
    )


def gateway(ledger: Ledger) -> web.Application:
    return create_app(Governance(policy=pack("pr-writer"), ledger=ledger), keys(), base_url="")


def test_every_route_is_documented_and_every_documented_route_exists(
    memory_ledger: Ledger,
) -> None:
    app = gateway(memory_ledger)
    served = {
        (route.method.lower(), route.resource.canonical)  # type: ignore[union-attr]
        for route in app.router.routes()
        if route.method != "HEAD"
        # The console's HTML pages are not the API (docs/console.md lists them).
        and not route.resource.canonical.startswith("/console")  # type: ignore[union-attr]
    }
    documented = {(method, path) for path, ops in document()["paths"].items() for method in ops}
    assert served == documented


async def test_the_document_is_served_without_a_key(
    aiohttp_client: Any, memory_ledger: Ledger
) -> None:
    client: TestClient = await aiohttp_client(gateway(memory_ledger))
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert await response.json() == document()


@pytest.mark.parametrize(
    ("key", "examples", "writes"),
    [
        (ADMIN_KEY, 40, True),
        (AGENT_KEY, 15, True),
        (ALICE_KEY, 15, False),
        (AUDITOR_KEY, 15, False),
    ],
)
def test_schemathesis_finds_no_server_error(
    tmp_path: Path, key: str, examples: int, writes: bool
) -> None:
    """Generated requests for every route, as each role: no 5xx, and every answer has the
    status, content type, headers and shape the document promises. The ledger verifies
    afterwards (roles that cannot act leave it empty)."""
    home = make_home(tmp_path)
    with serving(home) as served:
        command = [
            str(BIN / "st"), "run", f"{served.url}/openapi.json",
            "--header", f"X-API-Key: {key}",
            "--checks", CHECKS,
            "--max-examples", str(examples),
            "--seed", "20261126",
            "--request-timeout", "30",
        ]  # fmt: skip
        done = subprocess.run(
            command,
            cwd=tmp_path,  # its cache directory goes there
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-6000:]
    log = served.log.read_text()
    assert "Traceback" not in log, log[-4000:]
    if not writes:
        assert "empty_ledger" in run(AEGISCTL, "evidence", "verify", home=home).out
        return
    verified = run(
        AEGISCTL, "evidence", "verify", "--repo", "ledger",
        "--trusted-key", "keys/ledger.key.pub", home=home,
    )  # fmt: skip
    assert verified.code == 0, verified
