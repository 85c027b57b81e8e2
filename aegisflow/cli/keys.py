"""``aegisctl keys``: create and show the ledger signing key."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from aegisflow.auth import add_key, new_key
from aegisflow.cli.app import HomeOption
from aegisflow.config import SIGNER_PRINCIPAL, Paths
from aegisflow.keys import Signer, load_signer, public_path, save_signer
from aegisflow.ledger.note import verifier_key
from aegisflow.ledger.sshsig import allowed_signers_line

app = typer.Typer(help="Create and show signing keys.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)


def _write_allowed_signers(paths: Paths, signer: Signer) -> None:
    line = allowed_signers_line(SIGNER_PRINCIPAL, signer.public_key) + "\n"
    path = paths.allowed_signers
    existing = path.read_text() if path.exists() else ""
    if line not in existing:
        path.write_text(existing + line)


@app.command("init")
def init(home: HomeOption = None) -> None:
    """Create the ledger signing key (Ed25519, mode 0600) unless it exists.

    Also writes keys/allowed_signers so plain git can check commit signatures. An
    existing key is never overwritten.
    """
    paths = Paths.from_env(home)
    if paths.ledger_key.exists():
        signer = load_signer(paths.ledger_key)
        out.print(f"ledger key exists: {paths.ledger_key} ({signer.public_key.fingerprint})")
    else:
        signer = Signer.generate()
        save_signer(signer, paths.ledger_key, comment=SIGNER_PRINCIPAL)
        out.print(f"created ledger key {paths.ledger_key} ({signer.public_key.fingerprint})")
    _write_allowed_signers(paths, signer)
    out.print(f"public key:      {public_path(paths.ledger_key)}")
    out.print(f"allowed signers: {paths.allowed_signers}")


@app.command("show")
def show(
    home: HomeOption = None,
    origin: Annotated[
        str | None, typer.Option(help="Also print the C2SP verifier key for this origin")
    ] = None,
) -> None:
    """Print the ledger public key, its fingerprint and allowed_signers line."""
    paths = Paths.from_env(home)
    signer = load_signer(paths.ledger_key)
    key = signer.public_key
    out.print(f"fingerprint:     {key.fingerprint}")
    out.print(f"key id:          {key.key_id}")
    out.print(f"public key:      {key.openssh(SIGNER_PRINCIPAL)}")
    out.print(f"allowed_signers: {allowed_signers_line(SIGNER_PRINCIPAL, key)}")
    if origin:
        out.print(f"verifier key:    {verifier_key(origin, key)}")


@app.command("api-key")
def api_key(
    principal: Annotated[str, typer.Option(help="Who the key belongs to (alice, claude-code)")],
    role: Annotated[list[str], typer.Option(help="agent, reviewer, admin or auditor (repeatable)")],
    key: Annotated[
        str | None,
        typer.Option(help="Use this key instead of a new random one (demo keys only)"),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Create an API key for the service; it is printed once and stored only hashed."""
    paths = Paths.from_env(home)
    chosen = key or new_key()
    add_key(paths.api_keys, chosen, principal, role)
    out.print(f"api key for {principal} ({', '.join(sorted(role))}): {chosen}")
    out.print(f"stored hashed in {paths.api_keys}", style="dim")
