"""Summarize bench/results/*.json as the table in docs/benchmarks.md (median and range).

Run: .venv/bin/python bench/summarize.py [bench/results]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROWS = [
    # (label, target, step, key, unit, better)
    (
        "Durable appends, 32 concurrent sessions",
        ">= 3,000 /s",
        "throughput",
        "entries_per_s",
        "/s",
        "high",
    ),
    (
        "Naive baseline (pygit2 commit + fsync per entry)",
        "(baseline)",
        "naive",
        "entries_per_s",
        "/s",
        "high",
    ),
    ("Append latency at 500/s offered, p50", "", "latency", "p50_ms", "ms", "low"),
    ("Append latency at 500/s offered, p99", "<= 10 ms", "latency", "p99_ms", "ms", "low"),
    (
        "Storage once packed (pack), bytes/entry",
        "<= 500",
        "big",
        "bytes_per_entry_packed",
        "B",
        "low",
    ),
    (
        "Storage once packed (pack + index), bytes/entry",
        "",
        "big",
        "bytes_per_entry_packed_with_index",
        "B",
        "low",
    ),
    ("Storage as written, bytes/entry", "", "big", "bytes_per_entry_written", "B", "low"),
    ("Full verify, 100k entries, as written", "<= 5 s", "big", "verify_written_s", "s", "low"),
    ("Full verify, 100k entries, compacted", "<= 5 s", "big", "verify_compacted_s", "s", "low"),
    ("Export 100k-entry ledger to a bundle (--all)", "<= 5 s", "big", "export_all_s", "s", "low"),
    ("Export one session of 100k-entry ledger", "", "big", "export_session_s", "s", "low"),
    ("Full verify, 1M entries, as written", "<= 50 s", "huge", "verify_written_s", "s", "low"),
    ("Export 1M-entry ledger to a bundle (--all)", "", "huge", "export_all_s", "s", "low"),
    ("Sustained appends while filling 1M (32 sessions)", "", "huge", "fill_rate", "/s", "high"),
]


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    for run in runs:
        if "huge" in run:
            run["huge"]["fill_rate"] = round(run["huge"]["entries"] / run["huge"]["fill_s"])
    print("| figure | target | median | range | runs |")
    print("|---|---|---|---|---|")
    for label, target, step, key, unit, _better in ROWS:
        values = [run[step][key] for run in runs if step in run and key in run[step]]
        if not values:
            continue
        median = statistics.median(values)
        spread = f"{min(values)}-{max(values)}" if len(values) > 1 else "-"
        print(f"| {label} | {target} | {median} {unit} | {spread} | {len(values)} |")


if __name__ == "__main__":
    main()
