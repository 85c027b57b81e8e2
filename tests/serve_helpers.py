"""``aegisflow serve`` as a real child process on a loopback port, on a fresh home."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from test_cli import AEGISCTL, AEGISFLOW, BIN, _env, run

from aegisflow.auth import add_key
from aegisflow.config import Paths

ROOT = Path(__file__).resolve().parent.parent
AGENT_KEY = "starter-key-001"
ADMIN_KEY = "ops-admin-key-0001"
ALICE_KEY = "alice-reviewer-key-0001"
AUDITOR_KEY = "audit-key-0001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_home(parent: Path) -> Path:
    """A home like ``install.sh`` makes: keys, an empty ledger, the packs, four API keys."""
    home = parent / "home"
    home.mkdir()
    shutil.copytree(ROOT / "policies", home / "policies")
    assert run(AEGISCTL, "keys", "init", home=home).code == 0
    assert run(AEGISFLOW, "ledger", "init", home=home).code == 0
    # `aegisctl keys api-key` is tested on its own; here the same function, in process.
    for principal, role, key in (
        ("claude-code", "agent", AGENT_KEY),
        ("alice", "reviewer", ALICE_KEY),
        ("ops", "admin", ADMIN_KEY),
        ("audit", "auditor", AUDITOR_KEY),
    ):
        add_key(Paths(home).api_keys, key, principal, [role])
    return home


@dataclass
class Served:
    home: Path
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final checkpoint."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def start(home: Path, *extra: str, env: dict[str, str] | None = None) -> Served:
    """Start the service on ``home`` (``env`` added to its environment) and wait until
    ``/health`` answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = home.parent / f"serve-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(BIN / AEGISFLOW), "serve", "--port", str(port), *extra],
            cwd=home,
            env={**_env(home), **(env or {})},
            stdout=sink,
            stderr=sink,
        )
    served = Served(home, url, process, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return served
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                served.stop()
                raise AssertionError(log.read_text()) from None
            time.sleep(0.05)


@contextmanager
def serving(home: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    served = start(home, *extra, env=env)
    try:
        yield served
    finally:
        served.stop()


def http(served: Served, method: str, path: str, key: str, body: Any = None) -> Any:
    """One JSON request to the service; the parsed answer (HTTP errors raise)."""
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        served.url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.load(response)
