"""Where AegisFlow keeps its files, with the defaults that make a checkout run as is.

The home is ``$AEGISFLOW_HOME`` if set, else the current directory. Under it:
``ledger/`` (the evidence repository) and ``keys/`` (``ledger.key`` with its ``.pub``,
and ``allowed_signers`` for ``git verify-commit``). Commands take flags to override each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LEDGER_KEY_NAME = "ledger.key"
ALLOWED_SIGNERS = "allowed_signers"
SIGNER_PRINCIPAL = "aegisflow-ledger"


@dataclass(frozen=True, slots=True)
class Paths:
    home: Path

    @classmethod
    def from_env(cls, home: Path | None = None) -> Paths:
        return cls(Path(home or os.environ.get("AEGISFLOW_HOME") or Path.cwd()))

    @property
    def ledger(self) -> Path:
        return self.home / "ledger"

    @property
    def keys(self) -> Path:
        return self.home / "keys"

    @property
    def ledger_key(self) -> Path:
        return self.keys / LEDGER_KEY_NAME

    @property
    def ledger_public_key(self) -> Path:
        return self.keys / (LEDGER_KEY_NAME + ".pub")

    @property
    def allowed_signers(self) -> Path:
        return self.keys / ALLOWED_SIGNERS

    @property
    def api_keys(self) -> Path:
        """Hashed API keys the service accepts (``aegisctl keys api-key``)."""
        return self.keys / "api-keys.json"

    @property
    def default_policy(self) -> Path:
        return self.home / "policies" / "pr-writer.yaml"
