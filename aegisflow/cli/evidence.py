"""``aegisctl evidence``: list, show, export and verify the evidence ledger."""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from aegisflow.cli.app import HomeOption
from aegisflow.cli.client import KeyOption, ServerOption, download
from aegisflow.cli.status import Exit
from aegisflow.config import Paths
from aegisflow.errors import InputError, KeyMaterialError
from aegisflow.keys import PublicKey, load_public_keys
from aegisflow.ledger.bundle import export_all, export_session, verify_bundle
from aegisflow.ledger.checkpoint import Checkpoint, open_checkpoint
from aegisflow.ledger.entry import validate_session_id
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.parallel import parallel_checker
from aegisflow.ledger.reading import list_sessions, session_entries
from aegisflow.ledger.render import subject
from aegisflow.ledger.verify import FindingKind, Report, verify_repository

app = typer.Typer(help="Inspect, export and verify the evidence ledger.", no_args_is_help=True)
# Piped output keeps whole lines (times, hashes) instead of rich's 80-column fit.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, highlight=False, soft_wrap=True)

RepoOption = Annotated[
    Path | None, typer.Option("--repo", help="Ledger repository (default: <home>/ledger)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]


def _repo(home: Path | None, repo: Path | None) -> Path:
    return repo or Paths.from_env(home).ledger


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


@app.command("sessions")
def sessions(home: HomeOption = None, repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """List the sessions in the ledger."""
    storage = GitStorage(_repo(home, repo))
    try:
        infos = list_sessions(storage)
    finally:
        storage.close()
    if as_json:
        out.print_json(
            data=[
                {
                    "session": i.session,
                    "entries": i.entries,
                    "last_index": i.last_index,
                    "last_type": i.last_type,
                    "last_time": i.last_time,
                    "closed": i.closed,
                    "head": i.head.hex(),
                }
                for i in infos
            ]
        )
        return
    if not infos:
        err.print("no sessions in this ledger")
        return
    table = Table("session", "entries", "last entry", "last time", "closed", box=None)
    for i in infos:
        table.add_row(
            i.session, str(i.entries), f"#{i.last_index} {i.last_type}", i.last_time,
            "yes" if i.closed else "no",
        )  # fmt: skip
    out.print(table)


@app.command("show")
def show(
    session: Annotated[str, typer.Argument(help="Session id")],
    home: HomeOption = None,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show every entry of one session, oldest first."""
    validate_session_id(session)
    storage = GitStorage(_repo(home, repo))
    try:
        entries = session_entries(storage, session)
    finally:
        storage.close()
    if as_json:
        out.print_json(
            data=[
                {**s.entry.to_dict(), "entry_hash": s.entry_hash.hex(), "commit": s.commit_id.hex()}
                for s in entries
            ]
        )
        return
    table = Table("seq", "index", "time", "entry", "entry hash", box=None)
    for s in entries:
        table.add_row(
            str(s.entry.seq), str(s.entry.index), s.entry.time, subject(s.entry),
            s.entry_hash.hex()[:16],
        )  # fmt: skip
    out.print(table)


@app.command("export")
def export(
    out_file: Annotated[Path, typer.Option("--out", help="Bundle file to write")],
    session: Annotated[str | None, typer.Option("--session", help="Export one session")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Export the whole ledger")] = False,
    home: HomeOption = None,
    repo: RepoOption = None,
    server: ServerOption = None,
    api_key: KeyOption = None,
) -> None:
    """Write a git bundle of one session (--session) or of the whole ledger (--all).

    With --server, the bundle comes from a running service (admin or auditor key).
    """
    if (session is None) == (not all_):
        raise InputError("give exactly one of --session SESSION or --all")
    if server is not None:
        if repo is not None:
            raise InputError("give --repo or --server, not both")
        size = _download(out_file, session, server, api_key)
        what = f"session {session}" if session else "ledger"
        err.print(f"exported {what} from {server} to {out_file} ({size} bytes)")
        return
    path = _repo(home, repo)
    with _progress() as progress:
        task: TaskID = progress.add_task("exporting", total=None)

        def step(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=total or None)

        if session is not None:
            info = export_session(path, session, out_file, progress=step)
        else:
            info = export_all(path, out_file)
    what = f"session {session}" if session else "ledger"
    err.print(f"exported {what} to {info.path} ({info.bytes} bytes)")


def _download(out_file: Path, session: str | None, server: str, api_key: str | None) -> int:
    if session is None:
        route = "/admin/v1/evidence/export"
    else:
        route = f"/admin/v1/sessions/{validate_session_id(session)}/export"
    return download(route, out_file, server=server, api_key=api_key)


def _trusted(home: Path | None, files: list[Path] | None) -> list[PublicKey]:
    if files:
        return load_public_keys(files)
    default = Paths.from_env(home).ledger_public_key
    if not default.exists():
        raise KeyMaterialError(
            "no trusted key given",
            hint="pass --trusted-key FILE (the ledger's public key, obtained out of band)",
        )
    return load_public_keys([default])


def _print_report(report: Report, session: str | None, origin_hint: str) -> None:
    summary = report.sessions.get(session) if session is not None else None
    err.print(f"verifying {f'session {session}' if session is not None else origin_hint}...")
    total = summary.entries if summary else report.total_entries
    for finding in report.findings:
        if not finding.is_error:
            err.print(f"warning: {finding}")
    if report.valid and (session is None or summary is not None):
        # Entry lines are printed only for evidence that verified, never before a failure.
        for line in summary.lines if summary else []:
            out.print(line)
        out.print(f"valid: true, total_entries: {total}, audit log integrity verified")
        if summary is not None:
            out.print(f"session_manifest_hash: {summary.manifest_hash or 'none (session open)'}")
        elif report.latest_checkpoint is not None:
            cp = report.latest_checkpoint
            out.print(f"checkpoint: {cp.origin} size {cp.size} root {cp.root.hex()}")
        return
    errors = [f for f in report.findings if f.is_error]
    unreadable = any(f.kind == FindingKind.BAD_BUNDLE for f in errors)
    if session is not None and summary is None and not unreadable:
        out.print(f"valid: false, session {session} is not in this evidence")
    out.print(f"valid: false, total_entries: {total}, {len(errors)} findings")
    for finding in errors:
        out.print(f"  {finding}")


@app.command("verify")
def verify(
    repo: RepoOption = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", help="Verify a bundle file")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Session to report")] = None,
    trusted_key: Annotated[
        list[Path] | None,
        typer.Option("--trusted-key", help="Trusted ledger public key file (repeatable)"),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="A signed checkpoint seen earlier: must be contained"),
    ] = None,
    all_signatures: Annotated[
        bool,
        typer.Option(
            "--all-signatures",
            help="Verify every commit's SSH signature, also those pinned by a checkpoint",
        ),
    ] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (0: one per CPU)")] = 0,
    home: HomeOption = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    api_key: KeyOption = None,
) -> None:
    """Replay the ledger (or a bundle) and check every hash, link and signature.

    With --server, the session's (or the whole ledger's) bundle is fetched from the
    service and verified here, against the trusted key: the service is not trusted.
    """
    if sum(x is not None for x in (repo, bundle, server)) > 1:
        raise InputError("give one of --repo, --bundle or --server")
    if session is not None:
        validate_session_id(session)
    keys = _trusted(home, trusted_key)
    with contextlib.ExitStack() as cleanup:
        if server is not None:
            tmp = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="aegisflow-verify-"))
            bundle = Path(tmp) / "evidence.bundle"
            _download(bundle, session, server, api_key)
        trusted_cp: Checkpoint | None = None
        if checkpoint is not None:
            try:
                trusted_cp = open_checkpoint(checkpoint.read_bytes(), keys)
            except OSError as e:
                raise InputError(f"cannot read checkpoint {checkpoint}: {e.strerror}") from e
        count = workers or None
        with _progress() as bar:
            task = bar.add_task("verifying", total=None)

            def step(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total or None)

            if bundle is not None:
                target = f"bundle {bundle}"
                report = verify_bundle(
                    bundle,
                    keys,
                    session=session,
                    trusted_checkpoint=trusted_cp,
                    checker_for=lambda path: parallel_checker(path, count),
                    all_signatures=all_signatures,
                    progress=step,
                )
            else:
                path = _repo(home, repo)
                target = f"ledger {path}"
                storage = GitStorage(path)
                try:
                    with parallel_checker(path, count) as checker:
                        report = verify_repository(
                            storage,
                            keys,
                            session=session,
                            trusted_checkpoint=trusted_cp,
                            checker=checker,
                            all_signatures=all_signatures,
                            progress=step,
                        )
                finally:
                    storage.close()
        if as_json:
            data: dict[str, Any] = report.to_dict()
            if session is not None and session in report.sessions:
                data["lines"] = report.sessions[session].lines
            out.print(json.dumps(data, indent=2), markup=False)
        else:
            _print_report(report, session, target)
        if not report.valid or (session is not None and session not in report.sessions):
            raise typer.Exit(Exit.VERIFY_FAILED)
