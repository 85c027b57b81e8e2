"""The installed console scripts, end to end: ``aegisctl keys|evidence`` and ``aegisflow ledger``.

Every command runs as a real subprocess (the ``aegisctl`` / ``aegisflow`` scripts next to
``sys.executable``) in its own ``AEGISFLOW_HOME``, with git's global and system config
switched off. Each run is checked for stdout, stderr and the exit code of
:mod:`aegisflow.cli.status`, and :func:`run` fails any run whose output holds a Python
traceback. One module-scoped ledger holding the walkthrough's session (written with the
Python API, exported once with the CLI) serves the read-only tests.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from aegisflow.cli.ledger import SEED_ENTRIES, SEED_SESSION
from aegisflow.cli.status import Exit
from aegisflow.config import SIGNER_PRINCIPAL
from aegisflow.keys import Signer, load_signer, save_signer
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger, Receipt
from aegisflow.ledger.sshsig import allowed_signers_line

BIN = Path(sys.executable).parent
AEGISCTL = "aegisctl"
AEGISFLOW = "aegisflow"

SESSION = SEED_SESSION
OTHER_SESSION = "sess-other-0001"

# The seven lines of "aegisctl evidence verify" in /work/shared/seed-walkthrough.txt.
SEED_LINES = [
    "envelope a7890917-44c6-44b0-8af4-283eb2933843 allow github.get_file_contents",
    "envelope b1f0c324-0b9a-4e57-9c81-7e2a5d4f1c2b allow shell.pytest",
    "envelope c4d7e2f1-8a3b-4c92-b6e0-1f5a8d9c3b47 block shell.rm",
    "envelope d9e8a1b3-2c4f-4e6d-9a7b-5c3e8f1d2a4b review github.create_pull_request",
    "envelope d9e8a1b3-2c4f-4e6d-9a7b-5c3e8f1d2a4b approve alice",
    "envelope e2a5b8c1-4d7e-4f0a-9b3c-6e8d1f4a7c2d allow github.create_pull_request",
    "envelope e2a5b8c1-4d7e-4f0a-9b3c-6e8d1f4a7c2d result pr/1247",
]
VALID_LINE = "valid: true, total_entries: 7, audit log integrity verified"
HEX64 = re.compile(r"[0-9a-f]{64}")

needs_ssh_keygen = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None, reason="git needs ssh-keygen to check SSH signatures"
)


# -- running the scripts ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        shown = " ".join(a if len(a) < 60 else a[:57] + "..." for a in self.args)
        return f"$ {shown}\nexit {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AEGISFLOW_", "GIT_")) and k not in {"COLUMNS", "LINES"}
    }
    env.update(
        AEGISFLOW_HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        PYTHONIOENCODING="utf-8",
        NO_COLOR="1",
    )
    return env


def run(script: str, *args: str, home: Path, cwd: Path | None = None) -> Result:
    """Run an installed console script; fail on any Python traceback in its output."""
    proc = subprocess.run(
        [str(BIN / script), *args],
        cwd=cwd or (home if home.is_dir() else home.parent),
        env=_env(home),
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=120,
        check=False,
    )
    result = Result((script, *args), proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr, result
    return result


def run_many(calls: dict[str, Sequence[str]], *, home: Path) -> dict[str, Result]:
    """Run ``aegisctl`` once per entry of ``calls``, concurrently (they only read)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            name: pool.submit(run, AEGISCTL, *args, home=home) for name, args in calls.items()
        }
        return {name: f.result() for name, f in futures.items()}


def git(*args: str, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        cwd=cwd or home,
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def snapshot(root: Path) -> list[tuple[str, int, int]]:
    """Every file under ``root`` with its size and mtime: shows anything created or touched."""
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    )


def error_lines(result: Result) -> list[str]:
    return [ln for ln in result.err.splitlines() if ln.strip()]


# -- the shared ledger -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class World:
    home: Path
    origin: str
    fingerprint: str
    manifest: Receipt
    session_bundle: Path
    all_bundle: Path
    keys_init: Result
    export_session: Result
    export_all: Result


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """keys init, ledger init, the seed session (closed) plus one open session, two exports."""
    home = tmp_path_factory.mktemp("cli") / "home"
    keys_init = run(AEGISCTL, "keys", "init", home=home)
    assert keys_init.code == Exit.SUCCESS, keys_init
    fingerprint = re.search(r"\((SHA256:[A-Za-z0-9+/]{43})\)", keys_init.out)
    assert fingerprint, keys_init
    init = run(AEGISFLOW, "ledger", "init", home=home)
    assert init.code == Exit.SUCCESS, init
    origin = re.search(r"\(origin (\S+)\)", init.out)
    assert origin, init

    signer = load_signer(home / "keys" / "ledger.key")
    ledger = Ledger.open(GitStorage(home / "ledger", writable=True), signer)
    try:
        for kind, body in SEED_ENTRIES:
            ledger.append(SESSION, kind, body)
        manifest = ledger.close_session(SESSION)
        ledger.append(OTHER_SESSION, "decision", dict(SEED_ENTRIES[0][1]))
    finally:
        ledger.close()

    export_session = run(
        AEGISCTL, "evidence", "export", "--session", SESSION, "--out", "S.bundle", home=home
    )
    export_all = run(AEGISCTL, "evidence", "export", "--all", "--out", "all.bundle", home=home)
    return World(
        home=home,
        origin=origin.group(1),
        fingerprint=fingerprint.group(1),
        manifest=manifest,
        session_bundle=home / "S.bundle",
        all_bundle=home / "all.bundle",
        keys_init=keys_init,
        export_session=export_session,
        export_all=export_all,
    )


@pytest.fixture(scope="module")
def sessions_table(world: World) -> Result:
    return run(AEGISCTL, "evidence", "sessions", home=world.home)


@pytest.fixture(scope="module")
def sessions_json(world: World) -> list[dict]:
    result = run(AEGISCTL, "evidence", "sessions", "--json", home=world.home)
    assert result.code == Exit.SUCCESS, result
    return json.loads(result.out)


@pytest.fixture(scope="module")
def show_table(world: World) -> Result:
    return run(AEGISCTL, "evidence", "show", SESSION, home=world.home)


@pytest.fixture(scope="module")
def show_json(world: World) -> list[dict]:
    result = run(AEGISCTL, "evidence", "show", SESSION, "--json", home=world.home)
    assert result.code == Exit.SUCCESS, result
    return json.loads(result.out)


@pytest.fixture(scope="module")
def verified_bundle(world: World) -> Result:
    return run(
        AEGISCTL, "evidence", "verify", "--bundle", "S.bundle", "--session", SESSION,
        "--trusted-key", "keys/ledger.key.pub", home=world.home,
    )  # fmt: skip


# -- keys ----------------------------------------------------------------------------


def test_keys_init_creates_private_key_0600_public_key_and_allowed_signers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run(AEGISCTL, "keys", "init", home=home)
    assert result.code == Exit.SUCCESS, result
    keys = home / "keys"
    private, public, allowed = (
        keys / "ledger.key",
        keys / "ledger.key.pub",
        keys / "allowed_signers",
    )
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    pub_line = public.read_text()
    assert re.fullmatch(r"ssh-ed25519 AAAA[A-Za-z0-9+/=]+ aegisflow-ledger\n", pub_line)
    blob = pub_line.split()[1]
    assert allowed.read_text() == f'{SIGNER_PRINCIPAL} namespaces="git" ssh-ed25519 {blob}\n'
    assert f"created ledger key {private} (SHA256:" in result.out
    assert f"public key:      {public}" in result.out
    assert f"allowed signers: {allowed}" in result.out
    assert "BEGIN OPENSSH" not in result.out + result.err


def test_keys_init_twice_keeps_the_key_and_exits_0(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = run(AEGISCTL, "keys", "init", home=home)
    assert first.code == Exit.SUCCESS, first
    before = snapshot(home)
    second = run(AEGISCTL, "keys", "init", home=home)
    assert second.code == Exit.SUCCESS, second
    assert snapshot(home) == before  # same key, same .pub, no duplicate allowed_signers line
    fingerprint = re.search(r"\((SHA256:\S+)\)", first.out)
    assert fingerprint, first
    assert f"ledger key exists: {home / 'keys' / 'ledger.key'} ({fingerprint.group(1)})" in (
        second.out
    )


def test_keys_show_prints_the_fingerprint(world: World) -> None:
    result = run(AEGISCTL, "keys", "show", home=world.home)
    assert result.code == Exit.SUCCESS, result
    assert f"fingerprint:     {world.fingerprint}" in result.lines
    pub = (world.home / "keys" / "ledger.key.pub").read_text().strip()
    assert f"public key:      {pub}" in result.lines
    assert re.search(r"^key id: +[0-9a-f]{64}$", result.out, re.MULTILINE)
    assert "BEGIN OPENSSH" not in result.out
    if shutil.which("ssh-keygen"):
        keygen = subprocess.run(
            ["ssh-keygen", "-l", "-f", str(world.home / "keys" / "ledger.key.pub")],
            capture_output=True,
            text=True,
            check=True,
        )
        assert world.fingerprint in keygen.stdout


@pytest.mark.parametrize(
    "command",
    [(AEGISCTL, "keys", "show"), (AEGISCTL, "keys", "init"), (AEGISFLOW, "ledger", "init")],
    ids=["keys-show", "keys-init", "ledger-init"],
)
def test_private_key_readable_by_others_is_refused(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    home = tmp_path / "home"
    save_signer(Signer.generate(), home / "keys" / "ledger.key", comment=SIGNER_PRINCIPAL)
    key = home / "keys" / "ledger.key"
    key.chmod(0o644)
    result = run(*command, home=home)
    assert result.code == Exit.ERROR, result
    assert result.out == ""
    assert error_lines(result) == [
        f"error: signing key {key} is accessible by group or others (mode 644)",
        f"hint: chmod 600 {key}",
    ]
    assert not (home / "ledger").exists()


def test_missing_signing_key_names_the_fix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run(AEGISFLOW, "ledger", "init", home=home)
    assert result.code == Exit.ERROR, result
    assert error_lines(result) == [
        f"error: signing key {home / 'keys' / 'ledger.key'} does not exist",
        "hint: create one with: aegisctl keys init",
    ]
    assert not home.exists()


# -- ledger init and demo ------------------------------------------------------------------


def test_ledger_init_twice_keeps_the_ledger(world: World) -> None:
    before = snapshot(world.home / "ledger")
    result = run(AEGISFLOW, "ledger", "init", home=world.home)
    assert result.code == Exit.SUCCESS, result
    assert result.out == f"ledger exists: {world.home / 'ledger'}\n"
    assert snapshot(world.home / "ledger") == before


def test_ledger_demo_prints_the_walkthrough(world: World) -> None:
    result = run(AEGISFLOW, "ledger", "demo", home=world.home)
    assert result.code == Exit.SUCCESS, result
    lines = result.lines
    start = lines.index(f"verifying session {SESSION}...")
    assert lines[start + 1 : start + 8] == SEED_LINES
    assert lines[start + 8] == VALID_LINE
    assert re.fullmatch(r"session_manifest_hash: [0-9a-f]{64}", lines[start + 9])
    assert result.err == ""


# -- sessions and show ------------------------------------------------------------------


def test_sessions_table(sessions_table: Result) -> None:
    assert sessions_table.code == Exit.SUCCESS, sessions_table
    header, *rows = sessions_table.lines
    assert header.split() == ["session", "entries", "last", "entry", "last", "time", "closed"]
    assert len(rows) == 2
    seed, other = (row.split() for row in rows)
    assert seed[:4] == [SESSION, "8", "#7", "manifest"]
    assert seed[-1] == "yes"
    assert other[:4] == [OTHER_SESSION, "1", "#8", "decision"]
    assert other[-1] == "no"


def test_sessions_json(world: World, sessions_json: list[dict]) -> None:
    by_name = {s["session"]: s for s in sessions_json}
    assert list(by_name) == [SESSION, OTHER_SESSION]
    seed = by_name[SESSION]
    assert seed["entries"] == 8
    assert seed["last_index"] == 7
    assert seed["last_type"] == "manifest"
    assert seed["closed"] is True
    assert seed["head"] == world.manifest.commit
    assert seed["last_time"] == world.manifest.time
    assert by_name[OTHER_SESSION]["closed"] is False


def test_show_table(world: World, show_table: Result, show_json: list[dict]) -> None:
    assert show_table.code == Exit.SUCCESS, show_table
    assert show_table.lines[0].split() == ["seq", "index", "time", "entry", "entry", "hash"]
    rows = [ln.split() for ln in show_table.lines[1:] if re.match(r"^\s*\d+\s+\d+\s", ln)]
    assert [(r[0], r[1]) for r in rows] == [(str(i), str(i)) for i in range(8)]
    for entry in show_json:
        assert entry["entry_hash"][:16] in show_table.out
    assert "block shell.rm" in show_table.out
    assert "manifest" in show_table.out


def test_show_json(world: World, show_json: list[dict]) -> None:
    assert len(show_json) == 8
    assert [e["seq"] for e in show_json] == list(range(8))
    assert [(e["type"], e["body"]) for e in show_json[:7]] == [
        (kind, body) for kind, body in SEED_ENTRIES
    ]
    assert all(e["session"] == SESSION and e["ledger"] == world.origin for e in show_json)
    for prev, entry in itertools.pairwise(show_json):
        assert entry["prev"] == prev["entry_hash"]
    manifest = show_json[-1]
    assert manifest["type"] == "manifest"
    assert manifest["entry_hash"] == world.manifest.entry_hash
    assert manifest["commit"] == world.manifest.commit


def test_tables_keep_full_times_when_piped(
    sessions_table: Result, sessions_json: list[dict], show_table: Result, show_json: list[dict]
) -> None:
    for info in sessions_json:
        assert info["last_time"] in sessions_table.out
    for entry in show_json:
        assert entry["time"] in show_table.out
    assert "github.get_file_contents" in show_table.out
    assert "…" not in sessions_table.out + show_table.out


# -- export --------------------------------------------------------------------------------


def bundle_refs(bundle: Path, home: Path) -> set[str]:
    heads = git("bundle", "list-heads", str(bundle), home=home)
    assert heads.returncode == 0, heads.stderr
    return {line.split()[1] for line in heads.stdout.splitlines()}


def test_export_session_writes_a_bundle_of_that_session_only(world: World) -> None:
    result = world.export_session
    assert result.code == Exit.SUCCESS, result
    assert result.out == ""
    size = world.session_bundle.stat().st_size
    assert f"exported session {SESSION} to S.bundle ({size} bytes)" in result.err
    assert world.session_bundle.read_bytes().startswith(b"# v2 git bundle\n")
    assert bundle_refs(world.session_bundle, world.home) == {
        "HEAD",
        "refs/heads/main",
        "refs/aegisflow/genesis",
        f"refs/sessions/{SESSION}",
    }
    assert not list(world.home.glob(".S.bundle.tmp-*"))


def test_export_all_writes_the_whole_ledger(world: World) -> None:
    result = world.export_all
    assert result.code == Exit.SUCCESS, result
    size = world.all_bundle.stat().st_size
    assert f"exported ledger to all.bundle ({size} bytes)" in result.err
    assert {f"refs/sessions/{SESSION}", f"refs/sessions/{OTHER_SESSION}"} <= bundle_refs(
        world.all_bundle, world.home
    )


def test_no_stray_blank_lines_on_stderr(world: World, verified_bundle: Result) -> None:
    for result in (world.export_session, world.export_all, verified_bundle):
        assert "" not in result.err.splitlines(), result


def test_git_clone_of_the_session_bundle(world: World, tmp_path: Path) -> None:
    clone = git("clone", "-q", str(world.session_bundle), str(tmp_path / "s"), home=world.home)
    assert clone.returncode == 0, clone.stderr
    log = git("log", "--format=%s", home=world.home, cwd=tmp_path / "s")
    subjects = log.stdout.splitlines()
    assert subjects[0] == f"export session {SESSION}"
    assert subjects[1] == f"manifest {SESSION} 7 entries"
    assert subjects[-1] == f"genesis {world.origin}"
    assert len(subjects) == 10  # export commit, 7 entries, manifest, genesis
    assert not any(OTHER_SESSION in s for s in subjects)


def test_git_clone_of_the_full_bundle(world: World, tmp_path: Path) -> None:
    clone = git(
        "clone", "-q", "--mirror", str(world.all_bundle), str(tmp_path / "a"), home=world.home
    )
    assert clone.returncode == 0, clone.stderr
    refs = git("for-each-ref", "--format=%(refname)", home=world.home, cwd=tmp_path / "a")
    assert f"refs/sessions/{OTHER_SESSION}" in refs.stdout.splitlines()


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("--out", "x.bundle"), "neither"),
        (("--session", SESSION, "--all", "--out", "x.bundle"), "both"),
    ],
    ids=["neither", "both"],
)
def test_export_needs_exactly_one_of_session_or_all(
    world: World, args: tuple[str, ...], what: str
) -> None:
    before = snapshot(world.home)
    result = run(AEGISCTL, "evidence", "export", *args, home=world.home)
    assert result.code == Exit.INVALID_INPUT, (what, result)
    assert error_lines(result) == ["error: give exactly one of --session SESSION or --all"]
    assert snapshot(world.home) == before


def test_export_without_out_is_a_usage_error(world: World) -> None:
    result = run(AEGISCTL, "evidence", "export", "--session", SESSION, home=world.home)
    assert result.code == Exit.USAGE, result
    assert "Missing option '--out'" in result.err


# -- verify: success ---------------------------------------------------------------------


def expected_verify_output(world: World) -> list[str]:
    return [*SEED_LINES, VALID_LINE, f"session_manifest_hash: {world.manifest.entry_hash}"]


def test_verify_session_bundle_prints_the_walkthrough(
    world: World, verified_bundle: Result
) -> None:
    assert verified_bundle.code == Exit.SUCCESS, verified_bundle
    assert verified_bundle.lines == expected_verify_output(world)
    assert HEX64.fullmatch(world.manifest.entry_hash)
    assert error_lines(verified_bundle) == [f"verifying session {SESSION}..."]


@pytest.mark.parametrize(
    "args",
    [
        ("--repo", "ledger", "--session", SESSION),
        ("--repo", "ledger", "--session", SESSION, "--trusted-key", "keys/allowed_signers"),
        ("--bundle", "all.bundle", "--session", SESSION, "--trusted-key", "keys/ledger.key.pub"),
    ],
    ids=["repo-default-key", "repo-allowed-signers", "full-bundle"],
)
def test_verify_session_from_repo_and_full_bundle(world: World, args: tuple[str, ...]) -> None:
    result = run(AEGISCTL, "evidence", "verify", *args, home=world.home)
    assert result.code == Exit.SUCCESS, result
    assert result.lines == expected_verify_output(world)


def test_verify_whole_ledger(world: World) -> None:
    result = run(AEGISCTL, "evidence", "verify", "--repo", "ledger", home=world.home)
    assert result.code == Exit.SUCCESS, result
    assert result.lines[0] == "valid: true, total_entries: 9, audit log integrity verified"
    assert re.fullmatch(
        rf"checkpoint: {re.escape(world.origin)} size 9 root [0-9a-f]{{64}}", result.lines[1]
    )
    assert len(result.lines) == 2


@pytest.mark.parametrize(
    "source", [("--bundle", "S.bundle"), ("--repo", "ledger")], ids=["bundle", "repo"]
)
def test_verify_json(world: World, source: tuple[str, str]) -> None:
    result = run(
        AEGISCTL, "evidence", "verify", *source, "--session", SESSION, "--json", home=world.home
    )
    assert result.code == Exit.SUCCESS, result
    data = json.loads(result.out)
    assert data["valid"] is True
    assert data["findings"] == []
    assert data["origin"] == world.origin
    assert data["lines"] == SEED_LINES
    summary = data["sessions"][SESSION]
    assert summary["entries"] == 7
    assert summary["closed"] is True
    assert summary["session_manifest_hash"] == world.manifest.entry_hash


# -- verify: failures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("other") / "other.key"
    save_signer(Signer.generate(), path, comment=SIGNER_PRINCIPAL)
    return path.with_name("other.key.pub")


@pytest.mark.parametrize(
    "source", [("--bundle", "S.bundle"), ("--repo", "ledger")], ids=["bundle", "repo"]
)
def test_verify_with_the_wrong_trusted_key_fails(
    world: World, other_key: Path, source: tuple[str, str]
) -> None:
    result = run(
        AEGISCTL, "evidence", "verify", *source, "--session", SESSION,
        "--trusted-key", str(other_key), home=world.home,
    )  # fmt: skip
    assert result.code == Exit.VERIFY_FAILED, result
    assert "valid: true" not in result.out
    assert "audit log integrity verified" not in result.out
    verdict = next(ln for ln in result.lines if ln.startswith("valid:"))
    assert re.fullmatch(r"valid: false, total_entries: 7, \d+ findings", verdict)
    untrusted = f"commit is signed by untrusted key {world.fingerprint}"
    assert f"  bad_commit_signature: {untrusted} (index=0 session={SESSION} commit=" in result.out
    assert "  unsigned: no checkpoint signed by a trusted key covers the ledger" in result.lines
    assert "bad_manifest_signature: manifest is not signed by a trusted key" in result.out


def test_verify_json_with_the_wrong_trusted_key(world: World, other_key: Path) -> None:
    result = run(
        AEGISCTL, "evidence", "verify", "--bundle", "S.bundle", "--session", SESSION,
        "--trusted-key", str(other_key), "--json", home=world.home,
    )  # fmt: skip
    assert result.code == Exit.VERIFY_FAILED, result
    data = json.loads(result.out)
    assert data["valid"] is False
    kinds = {f["kind"] for f in data["findings"]}
    assert {"bad_commit_signature", "bad_checkpoint_signature", "unsigned"} <= kinds


@dataclass(frozen=True, slots=True)
class BadBundles:
    dir: Path
    results: dict[str, Result]


@pytest.fixture(scope="module")
def bad_bundles(world: World, tmp_path_factory: pytest.TempPathFactory) -> BadBundles:
    """Damaged copies of S.bundle (and non-bundles), each verified once."""
    bad = tmp_path_factory.mktemp("bad")
    data = world.session_bundle.read_bytes()
    (bad / "truncated.bundle").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) * 2 // 3] ^= 0x01
    (bad / "flipped.bundle").write_bytes(bytes(flipped))
    (bad / "text.bundle").write_text("this is not a bundle\n")
    foreign = bad / "foreign.git"
    assert git("init", "-q", str(foreign), home=world.home).returncode == 0
    commit = git(
        "-c", "user.name=x", "-c", "user.email=x@example.invalid",
        "commit", "-q", "--allow-empty", "-m", "not a ledger", home=world.home, cwd=foreign,
    )  # fmt: skip
    assert commit.returncode == 0, commit.stderr
    made = git(
        "bundle", "create", "-q", str(bad / "foreign.bundle"), "--all", cwd=foreign, home=world.home
    )
    assert made.returncode == 0, made.stderr
    names = ["truncated", "flipped", "text", "missing", "foreign"]
    calls: dict[str, Sequence[str]] = {
        name: ("evidence", "verify", "--bundle", str(bad / f"{name}.bundle"), "--session", SESSION)
        for name in names
    }
    calls["truncated-json"] = (*calls["truncated"], "--json")
    return BadBundles(bad, run_many(calls, home=world.home))


BAD_BUNDLE_DETAILS = {
    "truncated": "is truncated or corrupt: git could not unpack it",
    "flipped": "is truncated or corrupt: git could not unpack it",
    "text": "is not a git bundle (no '# v2 git bundle' header)",
}


@pytest.mark.parametrize("name", list(BAD_BUNDLE_DETAILS))
def test_damaged_bundle_fails_verification(bad_bundles: BadBundles, name: str) -> None:
    result = bad_bundles.results[name]
    assert result.code == Exit.VERIFY_FAILED, result
    assert "valid: false, total_entries: 0, 1 findings" in result.lines
    path = bad_bundles.dir / f"{name}.bundle"
    finding = next(ln for ln in result.lines if ln.startswith("  bad_bundle: "))
    assert str(path) in finding
    assert BAD_BUNDLE_DETAILS[name] in finding
    assert "valid: true" not in result.out


def test_damaged_bundle_json(bad_bundles: BadBundles) -> None:
    result = bad_bundles.results["truncated-json"]
    assert result.code == Exit.VERIFY_FAILED, result
    data = json.loads(result.out)
    assert data["valid"] is False
    assert [f["kind"] for f in data["findings"]] == ["bad_bundle"]


@pytest.mark.parametrize("name", list(BAD_BUNDLE_DETAILS))
def test_unreadable_bundle_does_not_claim_the_session_is_missing(
    bad_bundles: BadBundles, name: str
) -> None:
    assert "is not in this evidence" not in bad_bundles.results[name].out


def test_nonexistent_bundle_names_the_path(bad_bundles: BadBundles) -> None:
    result = bad_bundles.results["missing"]
    assert result.code != Exit.SUCCESS, result
    assert f"bundle {bad_bundles.dir / 'missing.bundle'} does not exist" in result.out + result.err
    assert "valid: true" not in result.out


def test_nonexistent_bundle_is_an_operational_error(bad_bundles: BadBundles) -> None:
    result = bad_bundles.results["missing"]
    assert result.code == Exit.ERROR, result
    assert error_lines(result) == [
        f"error: bundle {bad_bundles.dir / 'missing.bundle'} does not exist"
    ]
    assert result.out == ""


def test_bundle_of_another_git_repository_is_refused(bad_bundles: BadBundles) -> None:
    result = bad_bundles.results["foreign"]
    assert result.code != Exit.SUCCESS, result
    assert "not an AegisFlow ledger" in result.out + result.err
    assert "valid: true" not in result.out


def test_bundle_of_another_git_repository_fails_verification(bad_bundles: BadBundles) -> None:
    result = bad_bundles.results["foreign"]
    assert result.code == Exit.VERIFY_FAILED, result
    assert any(ln.startswith("  bad_bundle: ") for ln in result.lines)


@pytest.fixture(scope="module")
def strangers(tmp_path_factory: pytest.TempPathFactory, world: World) -> Path:
    """A plain directory, a bare git repository and a work-tree repository: no ledgers."""
    root = tmp_path_factory.mktemp("strangers")
    (root / "plain").mkdir()
    (root / "plain" / "README").write_text("not a repository\n")
    assert git("init", "-q", "--bare", str(root / "bare.git"), home=world.home).returncode == 0
    assert git("init", "-q", str(root / "worktree"), home=world.home).returncode == 0
    return root


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("plain", "{path} is not a git repository"),
        ("missing", "{path} is not a git repository"),
        ("worktree", "{path} is not a bare git repository"),
        ("bare.git", "not an AegisFlow ledger: no refs/aegisflow/genesis or refs/heads/main"),
    ],
)
def test_verify_repo_that_is_not_a_ledger(
    world: World, strangers: Path, name: str, message: str
) -> None:
    path = strangers / name
    result = run(
        AEGISCTL, "evidence", "verify", "--repo", str(path), "--session", SESSION, home=world.home
    )
    assert result.code == Exit.ERROR, result
    assert result.out == ""
    assert error_lines(result)[0] == "error: " + message.format(path=path)
    assert not (strangers / "missing").exists()


@pytest.mark.parametrize("which", [("--all",), ("--session", SESSION)], ids=["all", "session"])
def test_export_from_a_git_repo_that_is_not_a_ledger(
    world: World, strangers: Path, tmp_path: Path, which: tuple[str, ...]
) -> None:
    path = strangers / "bare.git"
    out = tmp_path / "x.bundle"
    result = run(
        AEGISCTL, "evidence", "export", *which, "--repo", str(path), "--out", str(out),
        home=world.home,
    )  # fmt: skip
    assert result.code == Exit.ERROR, result
    assert error_lines(result)[0].startswith(f"error: {path} holds no AegisFlow ledger")
    assert list(tmp_path.iterdir()) == []


def test_sessions_in_a_directory_that_is_not_a_repo(world: World, strangers: Path) -> None:
    path = strangers / "plain"
    result = run(AEGISCTL, "evidence", "sessions", "--repo", str(path), home=world.home)
    assert result.code == Exit.ERROR, result
    assert error_lines(result) == [f"error: {path} is not a git repository"]


@pytest.mark.parametrize("command", [("sessions",), ("show", SESSION)], ids=["sessions", "show"])
def test_sessions_and_show_refuse_a_git_repo_that_is_not_a_ledger(
    world: World, strangers: Path, command: tuple[str, ...]
) -> None:
    path = strangers / "bare.git"
    result = run(AEGISCTL, "evidence", *command, "--repo", str(path), home=world.home)
    assert result.code == Exit.ERROR, result
    assert "AegisFlow ledger" in error_lines(result)[0]


# -- hostile session ids ------------------------------------------------------------------

HOSTILE_SESSIONS = {
    "dotdot": ("../x", "has characters outside [A-Za-z0-9._-]"),
    "lock": ("a.lock", "contains '..' or ends in '.' or '.lock'"),
    "ref": ("refs/heads/main", "has characters outside [A-Za-z0-9._-]"),
    "10kB": ("x" * 10_000, "session id is 10000 characters; the limit is 128"),
    "lookalike": ("\u0455ess-2026-04-06-1422", "session id '\\u0455ess-2026-04-06-1422' has"),
}


@pytest.mark.parametrize(("session", "message"), HOSTILE_SESSIONS.values(), ids=HOSTILE_SESSIONS)
def test_hostile_session_ids_are_refused_and_create_nothing(
    world: World, tmp_path: Path, session: str, message: str
) -> None:
    before = snapshot(world.home)
    out = tmp_path / "hostile.bundle"
    results = run_many(
        {
            "show": ("evidence", "show", session),
            "show-json": ("evidence", "show", session, "--json"),
            "export": ("evidence", "export", "--session", session, "--out", str(out)),
            "verify-bundle": ("evidence", "verify", "--bundle", "S.bundle", "--session", session),
            "verify-repo": ("evidence", "verify", "--repo", "ledger", "--session", session),
        },
        home=world.home,
    )
    for result in results.values():
        assert result.code == Exit.INVALID_INPUT, result
        assert result.out == ""
        (line,) = error_lines(result)
        assert line.startswith("error: session id ")
        assert message in line
        assert len(line) < 200  # the 10 kB id is not echoed back
    assert snapshot(world.home) == before
    assert list(tmp_path.iterdir()) == []


def test_unknown_session(world: World) -> None:
    results = run_many(
        {
            "show": ("evidence", "show", "no-such-session"),
            "verify": ("evidence", "verify", "--repo", "ledger", "--session", "no-such-session"),
        },
        home=world.home,
    )
    show = results["show"]
    assert show.code == Exit.INVALID_INPUT, show
    assert error_lines(show) == ["error: no session 'no-such-session' in this ledger"]
    verify = results["verify"]
    assert verify.code == Exit.VERIFY_FAILED, verify
    assert verify.lines[0] == "valid: false, session no-such-session is not in this evidence"


# -- verify: bad arguments and trusted keys ------------------------------------------------


def test_verify_repo_and_bundle_together(world: World) -> None:
    result = run(
        AEGISCTL, "evidence", "verify", "--repo", "ledger", "--bundle", "S.bundle", home=world.home
    )
    assert result.code == Exit.INVALID_INPUT, result
    assert result.out == ""
    assert error_lines(result) == ["error: give one of --repo, --bundle or --server"]


def test_verify_with_a_missing_trusted_key_file(world: World) -> None:
    result = run(
        AEGISCTL, "evidence", "verify", "--bundle", "S.bundle", "--trusted-key", "nope.pub",
        home=world.home,
    )  # fmt: skip
    assert result.code == Exit.ERROR, result
    assert result.out == ""
    assert error_lines(result) == ["error: trusted key file nope.pub does not exist"]


def test_verify_without_any_trusted_key(world: World, tmp_path: Path) -> None:
    result = run(
        AEGISCTL, "evidence", "verify", "--bundle", str(world.session_bundle), home=tmp_path
    )
    assert result.code == Exit.ERROR, result
    assert error_lines(result) == [
        "error: no trusted key given",
        "hint: pass --trusted-key FILE (the ledger's public key, obtained out of band)",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"# trusted keys\n\nnot a key at all\n", "line 3: not an ssh-ed25519 key"),
        (b"# trusted keys\nssh-ed25519 AAAA aegisflow-ledger\n", "line 2: truncated SSH wire data"),
        (b"ssh-ed25519 !!!notbase64!!! x\n", "line 1: OpenSSH public key is not valid base64"),
        (b"# only a comment\n", "no public key found"),
        (b"\xff\xfe\x00garbage", "cannot read trusted key file"),
    ],
    ids=["not-a-key", "truncated", "bad-base64", "empty", "binary"],
)
def test_verify_with_a_garbage_trusted_key_file(
    world: World, tmp_path: Path, content: bytes, message: str
) -> None:
    key = tmp_path / "garbage.pub"
    key.write_bytes(content)
    result = run(
        AEGISCTL, "evidence", "verify", "--bundle", "S.bundle", "--trusted-key", str(key),
        home=world.home,
    )  # fmt: skip
    assert result.code == Exit.ERROR, result
    assert result.out == ""
    (line,) = error_lines(result)
    assert line.startswith("error: ")
    assert str(key) in line
    assert message in line


# -- plain git checks the commit signatures ---------------------------------------------------


def git_ssh(
    world: World, *args: str, allowed: Path | None = None
) -> subprocess.CompletedProcess[str]:
    signers = allowed or world.home / "keys" / "allowed_signers"
    return git(
        "--git-dir", str(world.home / "ledger"),
        "-c", "gpg.format=ssh",
        "-c", f"gpg.ssh.allowedSignersFile={signers}",
        *args, home=world.home,
    )  # fmt: skip


@needs_ssh_keygen
def test_git_verify_commit_accepts_the_session_head(world: World) -> None:
    proc = git_ssh(world, "verify-commit", f"refs/sessions/{SESSION}")
    assert proc.returncode == 0, proc.stderr
    good = f'Good "git" signature for {SIGNER_PRINCIPAL} with ED25519 key {world.fingerprint}'
    assert good in proc.stderr


@needs_ssh_keygen
def test_git_log_show_signature_on_the_session(world: World) -> None:
    proc = git_ssh(world, "log", "--show-signature", f"refs/sessions/{SESSION}")
    assert proc.returncode == 0, proc.stderr
    commits = [ln for ln in proc.stdout.splitlines() if ln.startswith("commit ")]
    good = [ln for ln in proc.stdout.splitlines() if ln.startswith('Good "git" signature')]
    assert len(commits) == 9  # genesis, seven entries, manifest
    assert len(good) == len(commits)
    assert all(f"for {SIGNER_PRINCIPAL} with ED25519 key {world.fingerprint}" in ln for ln in good)
    status = git_ssh(world, "log", "--format=%G? %GS", f"refs/sessions/{SESSION}")
    assert status.stdout.splitlines() == [f"G {SIGNER_PRINCIPAL}"] * 9


@needs_ssh_keygen
def test_git_verify_commit_rejects_another_key(world: World, tmp_path: Path) -> None:
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(allowed_signers_line(SIGNER_PRINCIPAL, Signer.generate().public_key) + "\n")
    proc = git_ssh(world, "verify-commit", f"refs/sessions/{SESSION}", allowed=allowed)
    assert proc.returncode != 0
    assert "No principal matched" in proc.stderr
    assert f"signature for {SIGNER_PRINCIPAL}" not in proc.stderr


def test_keys_api_key_prints_the_key_once_and_stores_it_hashed(tmp_path: Path) -> None:
    made = run(AEGISCTL, "keys", "api-key", "--principal", "alice", "--role", "reviewer",
               home=tmp_path)  # fmt: skip
    assert made.code == 0, made
    key = made.out.split(": ")[-1].split()[0]
    stored = (tmp_path / "keys" / "api-keys.json").read_text()
    assert key not in stored
    assert hashlib.sha256(key.encode()).hexdigest() in stored
    given = run(AEGISCTL, "keys", "api-key", "--principal", "ci", "--role", "agent",
                "--key", "ci-key-0001", home=tmp_path)  # fmt: skip
    assert given.code == 0, given
    bad = run(AEGISCTL, "keys", "api-key", "--principal", "x", "--role", "root", home=tmp_path)
    assert bad.code != 0
