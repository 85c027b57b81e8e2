"""``aegisflow ledger``: create, checkpoint, compact and demonstrate the evidence ledger."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from aegisflow.cli.app import HomeOption
from aegisflow.config import Paths
from aegisflow.keys import load_signer
from aegisflow.ledger.bundle import export_session, verify_bundle
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger

app = typer.Typer(help="Create and maintain the evidence ledger.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)


def default_origin() -> str:
    return f"aegisflow.local/{uuid.uuid4().hex[:12]}"


@app.command("init")
def init(
    home: HomeOption = None,
    origin: Annotated[
        str | None, typer.Option(help="Ledger origin (checkpoint name); default: random")
    ] = None,
) -> None:
    """Create the ledger repository with its signed genesis (once)."""
    paths = Paths.from_env(home)
    if (paths.ledger / "HEAD").exists():
        storage = GitStorage(paths.ledger)
        storage.close()
        out.print(f"ledger exists: {paths.ledger}")
        return
    signer = load_signer(paths.ledger_key)
    ledger = Ledger.create(GitStorage.init(paths.ledger), signer, origin=origin or default_origin())
    out.print(f"created ledger {paths.ledger} (origin {ledger.origin})")
    ledger.close()


@app.command("checkpoint")
def checkpoint(home: HomeOption = None) -> None:
    """Open the ledger (recovering it if needed) and write a signed checkpoint."""
    paths = Paths.from_env(home)
    ledger = Ledger.open(GitStorage(paths.ledger, writable=True), load_signer(paths.ledger_key))
    try:
        cp = ledger.checkpoint()
    finally:
        ledger.close()
    out.print(f"checkpoint {cp.origin} size {cp.size} root {cp.root.hex()}")


@app.command("compact")
def compact(home: HomeOption = None) -> None:
    """Repack the ledger into one delta-compressed pack (run while the service is stopped)."""
    paths = Paths.from_env(home)
    storage = GitStorage(paths.ledger, writable=True)
    try:
        storage.compact()
    finally:
        storage.close()
    out.print(f"compacted {paths.ledger}")


SEED_SESSION = "sess-2026-04-06-1422"
_PR = {"envelope_id": "d9e8a1b3-2c4f-4e6d-9a7b-5c3e8f1d2a4b", "tool": "github.create_pull_request"}
SEED_ENTRIES: list[tuple[str, dict[str, Any]]] = [
    ("decision", {"envelope_id": "a7890917-44c6-44b0-8af4-283eb2933843", "decision": "allow",
                  "tool": "github.get_file_contents", "target": "aegisflow/aegisflow",
                  "matched_rule": "git:github.get_*", "policy": "pr-writer"}),
    ("decision", {"envelope_id": "b1f0c324-0b9a-4e57-9c81-7e2a5d4f1c2b", "decision": "allow",
                  "tool": "shell.pytest", "target": "/workspace",
                  "matched_rule": "shell:shell.pytest", "policy": "pr-writer"}),
    ("decision", {"envelope_id": "c4d7e2f1-8a3b-4c92-b6e0-1f5a8d9c3b47", "decision": "block",
                  "tool": "shell.rm", "target": "/workspace", "matched_rule": "shell:shell.rm",
                  "policy": "pr-writer", "reason": "destructive shell command"}),
    ("decision", {**_PR, "decision": "review", "target": "aegisflow/aegisflow",
                  "matched_rule": "git:github.create_pull_request", "policy": "pr-writer"}),
    ("approval", {**_PR, "target": "aegisflow/aegisflow", "reviewer": "alice",
                  "comment": "diff looks correct, scoped to the test file"}),
    ("decision", {"envelope_id": "e2a5b8c1-4d7e-4f0a-9b3c-6e8d1f4a7c2d", "decision": "allow",
                  "tool": "github.create_pull_request", "target": "aegisflow/aegisflow",
                  "matched_rule": "approved:d9e8a1b3-2c4f-4e6d-9a7b-5c3e8f1d2a4b",
                  "policy": "pr-writer",
                  "credential": {"type": "github_app_jwt",
                                 "scope": "pull_requests:write,contents:read",
                                 "expires_in": 600}}),
    ("result", {"envelope_id": "e2a5b8c1-4d7e-4f0a-9b3c-6e8d1f4a7c2d",
                "tool": "github.create_pull_request", "summary": "pr/1247",
                "result_sha256": "0" * 64}),
]  # fmt: skip


@app.command("demo")
def demo(home: HomeOption = None) -> None:
    """Record the walkthrough's session in a scratch ledger, export it and verify it."""
    signer = load_signer(Paths.from_env(home).ledger_key)
    with tempfile.TemporaryDirectory(prefix="aegisflow-demo-") as tmp:
        repo = Path(tmp) / "ledger"
        ledger = Ledger.create(GitStorage.init(repo), signer, origin=default_origin())
        for kind, body in SEED_ENTRIES:
            ledger.append(SEED_SESSION, kind, body)
        ledger.close_session(SEED_SESSION)
        ledger.close()
        bundle = Path(tmp) / "evidence.bundle"
        export_session(repo, SEED_SESSION, bundle)
        out.print(f"exported {SEED_SESSION} to a git bundle ({bundle.stat().st_size} bytes)")
        report = verify_bundle(bundle, [signer.public_key], session=SEED_SESSION)
        out.print(f"verifying session {SEED_SESSION}...")
        summary = report.sessions[SEED_SESSION]
        for line in summary.lines:
            out.print(line)
        verdict = "true" if report.valid else "false"
        out.print(
            f"valid: {verdict}, total_entries: {summary.entries}, audit log integrity verified"
        )
        out.print(f"session_manifest_hash: {summary.manifest_hash}")
        if not report.valid:
            for finding in report.findings:
                out.print(f"  {finding}")
            raise typer.Exit(3)
