"""Benchmarks of the evidence ledger (issue: evidence ledger figures).

Run: .venv/bin/python bench/ledger_bench.py [--entries 100000] [--big 1000000] [--out FILE]

Measures, on real git repositories under a temporary directory:

* durable append throughput with 32 concurrent sessions (threads), and the naive
  baseline (one pygit2 commit + fsync + ref update per entry, no batching);
* append latency at an offered load of 500 entries/s (open loop);
* storage per entry as written and after ``aegisflow ledger compact`` (git repack);
* full verification of ``--entries`` entries (and of ``--big`` entries if given);
* export of the ``--entries`` ledger to a bundle.

Bodies are ~500 bytes of realistic decision JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path

import pygit2

from aegisflow.canonical import canonical_bytes
from aegisflow.keys import Signer
from aegisflow.ledger.bundle import export_all, export_session
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.parallel import parallel_checker
from aegisflow.ledger.verify import verify_repository

ORIGIN = "aegisflow.bench/ledger"
TOOLS = ["github.get_file_contents", "github.create_pull_request", "shell.pytest", "shell.git"]
POLICY_HASH = "sha256:" + "5e" * 32


TITLES = [
    "fix: stabilize flaky TestEvidenceChain_Concurrent",
    "chore: bump pygit2 to 1.21",
    "feat: add readonly policy pack",
    "docs: explain approval expiry",
    "refactor: split gateway handlers",
    "test: cover hostile session ids",
]
PATHS = ["src/aegisflow/ledger", "src/aegisflow/policy", "tests", "docs", "bench"]


def body(n: int, rng: random.Random) -> dict:
    """A ~500-byte decision body shaped like the service's (random ids and digests)."""
    return {
        "envelope_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "decision": rng.choice(["allow", "allow", "allow", "review", "block"]),
        "tool": rng.choice(TOOLS),
        "target": "aegisflow/aegisflow",
        "capability": rng.choice(["read", "write", "execute"]),
        "policy": "pr-writer",
        "policy_hash": POLICY_HASH,
        "matched_rule": "git:github.get_*",
        "action_digest": f"{rng.getrandbits(256):064x}",
        "actor": {"agent": "claude-code", "principal": "agent-ci", "session": f"s{n % 32}"},
        "parameters": {
            "path": f"{rng.choice(PATHS)}/module_{rng.randrange(977)}.py",
            "ref": "main",
            "title": rng.choice(TITLES),
        },
    }


def body_size() -> int:
    rng = random.Random(1)
    return round(statistics.mean(len(canonical_bytes(body(i, rng))) for i in range(200)))


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def fill(ledger: Ledger, total: int, sessions: int = 32) -> float:
    """Append ``total`` entries from ``sessions`` threads; return seconds.

    Bodies are generated before the clock starts, so only the ledger is measured.
    """
    per = total // sessions
    rng = random.Random(5)
    pool = [body(n, rng) for n in range(min(per, 2000))]

    def worker(s: int) -> None:
        for n in range(per):
            ledger.append(f"sess-{s:04d}", "decision", pool[n % len(pool)])

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(sessions)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def bench_throughput(tmp: Path, total: int, signer: Signer) -> dict:
    ledger = Ledger.create(GitStorage.init(tmp / "tp.git"), signer, origin=ORIGIN)
    seconds = fill(ledger, total)
    ledger.close()
    return {"entries": total, "seconds": round(seconds, 2), "entries_per_s": round(total / seconds)}


def bench_naive(tmp: Path, total: int, signer: Signer) -> dict:
    """One pygit2 commit, fsync and ref update per entry: the baseline."""
    pygit2.settings.enable_fsync_gitdir(True)
    try:
        repo = pygit2.init_repository(str(tmp / "naive.git"), bare=True)
        sig = pygit2.Signature("AegisFlow Ledger", "ledger@aegisflow.invalid")
        rng = random.Random(7)
        parent: list[pygit2.Oid] = []
        start = time.perf_counter()
        for n in range(total):
            blob = repo.create_blob(canonical_bytes(body(n, rng)))
            builder = repo.TreeBuilder()
            builder.insert("entry.json", blob, pygit2.enums.FileMode.BLOB)
            tree = builder.write()
            oid = repo.create_commit("refs/sessions/naive", sig, sig, f"entry {n}\n", tree, parent)
            parent = [oid]
        seconds = time.perf_counter() - start
    finally:
        pygit2.settings.enable_fsync_gitdir(False)
    return {"entries": total, "seconds": round(seconds, 2), "entries_per_s": round(total / seconds)}


def bench_latency(tmp: Path, rate: int, seconds: float, signer: Signer) -> dict:
    """Open loop: one append every 1/rate s; latency from scheduled time to durable."""
    ledger = Ledger.create(GitStorage.init(tmp / "lat.git"), signer, origin=ORIGIN)
    rng = random.Random(3)
    latencies: list[float] = []
    lock = threading.Lock()
    total = int(rate * seconds)
    interval = 1.0 / rate
    start = time.perf_counter()
    pending: list[Future] = []
    for n in range(total):
        due = start + n * interval
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)

        def done(_f: Future, due: float = due) -> None:
            with lock:
                latencies.append(time.perf_counter() - due)

        fut = ledger.submit(f"sess-{n % 32:02d}", "decision", body(n, rng))
        fut.add_done_callback(done)
        pending.append(fut)
    for fut in pending:
        fut.result()
    elapsed = time.perf_counter() - start
    ledger.close()
    ms = [x * 1000 for x in latencies]
    return {
        "offered_per_s": rate,
        "achieved_per_s": round(total / elapsed),
        "entries": total,
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
    }


def time_verify(path: Path, signer: Signer) -> tuple[float, list[str]]:
    storage = GitStorage(path)
    start = time.perf_counter()
    with parallel_checker(path) as checker:
        report = verify_repository(storage, [signer.public_key], checker=checker)
    seconds = time.perf_counter() - start
    storage.close()
    return round(seconds, 2), [str(f) for f in report.findings if f.is_error][:5]


def bench_big(tmp: Path, total: int, signer: Signer, name: str, *, compact: bool = True) -> dict:
    """Fill, verify as written, compact, verify again, export (whole and one session)."""
    path = tmp / f"{name}.git"
    ledger = Ledger.create(GitStorage.init(path), signer, origin=ORIGIN)
    fill_s = fill(ledger, total)
    ledger.close_session("sess-0001")
    ledger.close()
    result: dict = {
        "entries": total,
        "fill_s": round(fill_s, 1),
        "bytes_per_entry_written": round(du(path / "objects") / total),
    }
    result["verify_written_s"], result["verify_written_findings"] = time_verify(path, signer)
    if compact:
        storage = GitStorage(path, writable=True)
        start = time.perf_counter()
        storage.compact()
        result["compact_s"] = round(time.perf_counter() - start, 1)
        storage.close()
        packs = list((path / "objects" / "pack").glob("*.pack"))
        result["bytes_per_entry_packed"] = round(sum(p.stat().st_size for p in packs) / total)
        result["bytes_per_entry_packed_with_index"] = round(du(path / "objects") / total)
        result["verify_compacted_s"], result["verify_compacted_findings"] = time_verify(
            path, signer
        )
    start = time.perf_counter()
    info = export_all(path, tmp / f"{name}.bundle")
    result["export_all_s"] = round(time.perf_counter() - start, 2)
    result["bundle_bytes_per_entry"] = round(info.bytes / total)
    start = time.perf_counter()
    export_session(path, "sess-0001", tmp / f"{name}-session.bundle")
    result["export_session_s"] = round(time.perf_counter() - start, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=0, help="also verify a ledger this large")
    parser.add_argument("--throughput", type=int, default=30_000)
    parser.add_argument("--naive", type=int, default=2_000)
    parser.add_argument("--only", default="", help="comma list: throughput,naive,latency,big")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    signer = Signer.generate()
    results: dict = {"body_bytes": body_size(), "cpus": os.cpu_count()}
    scratch = os.environ.get("BENCH_TMP")
    with tempfile.TemporaryDirectory(prefix="aegisflow-bench-", dir=scratch) as d:
        tmp = Path(d)
        steps = {
            "throughput": lambda: bench_throughput(tmp, args.throughput, signer),
            "naive": lambda: bench_naive(tmp, args.naive, signer),
            "latency": lambda: bench_latency(tmp, 500, 20.0, signer),
            "big": lambda: bench_big(tmp, args.entries, signer, "ledger100k"),
        }
        if args.big:
            steps["huge"] = lambda: bench_big(tmp, args.big, signer, "ledger1m", compact=False)
        for name, step in steps.items():
            if only and name not in only:
                continue
            print(f"running {name}...", file=sys.stderr, flush=True)
            results[name] = step()
            print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
