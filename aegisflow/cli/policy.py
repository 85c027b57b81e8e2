"""``aegisctl policy``: check, explain, simulate and replay policies before deploying them."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aegisflow.cli.app import HomeOption, report_error
from aegisflow.cli.status import Exit
from aegisflow.config import Paths
from aegisflow.envelope import Actor, Envelope, InvalidAction
from aegisflow.errors import AegisError, InputError, OperationalError
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.reading import list_sessions, session_entries
from aegisflow.policy import Policy, load_policy
from aegisflow.policy.engine import Explanation
from aegisflow.policy.normalize import action_envelopes, shell_envelopes
from aegisflow.policy.record import replay as replay_records

app = typer.Typer(help="Check, explain, simulate and replay policies.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)

SIMULATION_ACTOR = Actor(agent="aegisctl", session="policy-simulation")
MAX_ACTION_BYTES = 1 << 20

PolicyOption = Annotated[Path, typer.Option("--policy", "-p", help="The policy YAML file")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
CwdOption = Annotated[
    str, typer.Option("--cwd", help="Working directory of shell commands (default /workspace)")
]


def read_policy(path: Path) -> Policy:
    """Load and compile the policy at ``path``.

    Raises:
        OperationalError: If the file cannot be read.
        PolicyLoadError: If it is not a valid policy.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise OperationalError(f"cannot read policy {path}: {e.strerror}") from e
    return load_policy(data, source=str(path), name=path.stem)


@app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="Policy files to check")],
    as_json: JsonOption = False,
) -> None:
    """Load and compile policies; report every error with file, line and rule."""
    results: list[dict[str, Any]] = []
    failed = False
    for path in files:
        try:
            policy = read_policy(path)
        except AegisError as e:
            failed = True
            results.append({"file": str(path), "ok": False, "error": e.message})
            if not as_json:
                report_error(e)
            continue
        results.append(
            {
                "file": str(path),
                "ok": True,
                "policy": policy.name,
                "rules": len(policy.rules),
                "default_decision": policy.default_decision,
                "policy_hash": policy.content_hash,
            }
        )
        if not as_json:
            out.print(
                f"ok: {path}: policy {policy.name}, {len(policy.rules)} rules, "
                f"default {policy.default_decision}, {policy.content_hash}"
            )
    if as_json:
        out.print_json(data=results)
    if failed:
        raise typer.Exit(Exit.POLICY)


@app.command("explain")
def explain(
    policy_file: PolicyOption,
    action: Annotated[
        str | None,
        typer.Option("--action", help="Action JSON, @FILE, or - for standard input"),
    ] = None,
    command: Annotated[
        str | None, typer.Option("--shell", help="A shell command line instead of --action")
    ] = None,
    cwd: CwdOption = "/workspace",
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="List every rule, not only those for this protocol and tool up to "
            "the deciding one",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show every rule considered for an action, and why each did or did not match."""
    policy = read_policy(policy_file)
    if (action is None) == (command is None):
        raise InputError("give exactly one of --action and --shell")
    if command is not None:
        envelopes = shell_envelopes(command, actor=SIMULATION_ACTOR, cwd=cwd)
    else:
        envelopes = _envelopes(_load_action(action or ""), cwd)
    explanations = [policy.explain(envelope) for envelope in envelopes]
    if as_json:
        out.print_json(data=[e.to_dict() for e in explanations])
    else:
        for explanation in explanations:
            _print_explanation(explanation, show_all=show_all)
    final = policy.evaluate_all(envelopes).decision
    if len(explanations) > 1 and not as_json:
        out.print(f"overall: {final.decision} (strictest of {len(explanations)} commands)")


@app.command("simulate")
def simulate(
    policy_file: PolicyOption,
    actions: Annotated[Path, typer.Option("--actions", help="JSON Lines: one action per line")],
    cwd: CwdOption = "/workspace",
    as_json: JsonOption = False,
) -> None:
    """Decide a file of actions; a line may carry "expect": allow|review|block.

    Exits 6 when any decision differs from its line's "expect".
    """
    policy = read_policy(policy_file)
    rows: list[dict[str, Any]] = []
    for number, data in _jsonl(actions):
        expect = data.pop("expect", None)
        try:
            envelopes = _envelopes(data, cwd)
        except InvalidAction as e:
            raise InputError(f"{actions}:{number}: {e.message}") from None
        envelope, decision = policy.evaluate_all(envelopes).deciding
        row: dict[str, Any] = {
            "line": number,
            "tool": envelope.tool,
            "target": envelope.target,
            "decision": decision.decision,
            "matched_rule": decision.matched_rule,
            "reason": decision.reason,
        }
        if expect is not None:
            row["expect"] = expect
            row["ok"] = expect == decision.decision
        rows.append(row)
    mismatches = [r for r in rows if r.get("ok") is False]
    if as_json:
        out.print_json(data={"policy": policy.name, "results": rows})
    else:
        table = Table(title=f"{policy.name} ({policy.content_hash[:19]}...)")
        for column in ("line", "tool", "target", "decision", "matched_rule", "reason"):
            table.add_column(column, overflow="fold")
        for r in rows:
            mark = "" if r.get("ok", True) else f" (expected {r['expect']})"
            table.add_row(
                str(r["line"]), r["tool"], r["target"], r["decision"] + mark,
                r["matched_rule"], r["reason"],
            )  # fmt: skip
        out.print(table)
        counts = {
            d: sum(1 for r in rows if r["decision"] == d) for d in ("allow", "review", "block")
        }
        out.print(
            f"{len(rows)} actions: {counts['allow']} allow, {counts['review']} review, "
            f"{counts['block']} block"
            + (f"; {len(mismatches)} differ from expect" if mismatches else "")
        )
    if mismatches:
        raise typer.Exit(Exit.POLICY)


@app.command("replay")
def replay(
    policy_file: PolicyOption,
    home: HomeOption = None,
    ledger: Annotated[
        Path | None, typer.Option("--ledger", help="Ledger repository (default: <home>/ledger)")
    ] = None,
    session: Annotated[str | None, typer.Option("--session", help="Only this session")] = None,
    as_json: JsonOption = False,
) -> None:
    """Re-decide every recorded envelope under a proposed policy; show what would change."""
    policy = read_policy(policy_file)
    storage = GitStorage(ledger or Paths.from_env(home).ledger)
    try:
        names = [session] if session else [s.session for s in list_sessions(storage)]
        records = (
            (name, stored.entry.index, stored.entry.body)
            for name in names
            for stored in session_entries(storage, name)
            if stored.entry.type == "decision"
        )
        report = replay_records(records, policy)
    finally:
        storage.close()
    if as_json:
        out.print_json(data=report.to_dict())
        return
    if report.changes:
        table = Table(title=f"decisions that change under {policy.name}")
        for column in ("session", "envelope", "tool", "target", "before", "after"):
            table.add_column(column, overflow="fold")
        for c in report.changes:
            table.add_row(
                c.session, c.envelope_id, c.tool, c.target,
                f"{c.before} ({c.before_rule})", f"{c.after} ({c.after_rule})",
            )  # fmt: skip
        out.print(table)
    out.print(report.summary())
    if report.skipped:
        out.print(f"{report.skipped} decision entries have no recorded envelope and were skipped")


# -- helpers ------------------------------------------------------------------------------


def _load_action(text: str) -> dict[str, Any]:
    if text == "-":
        raw = sys.stdin.read(MAX_ACTION_BYTES + 1)
        where = "standard input"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            raw = path.read_text(encoding="utf-8")[: MAX_ACTION_BYTES + 1]
        except OSError as e:
            raise OperationalError(f"cannot read {path}: {e.strerror}") from e
        where = str(path)
    else:
        raw, where = text, "--action"
    if len(raw) > MAX_ACTION_BYTES:
        raise InputError(f"{where}: the action is larger than 1 MiB")
    return _json_object(raw, where)


def _json_object(raw: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise InputError(
            f"{where}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: an action is a JSON object")
    return data


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise OperationalError(f"cannot read {path}: {e.strerror}") from e
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    for number, line in enumerate(lines, 1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, _json_object(line, f"{path}:{number}")


def _envelopes(data: dict[str, Any], cwd: str) -> tuple[Envelope, ...]:
    actor = Actor.from_dict(data.pop("actor")) if "actor" in data else SIMULATION_ACTOR
    return action_envelopes(data, actor=actor, cwd=cwd)


def _print_explanation(explanation: Explanation, *, show_all: bool) -> None:
    envelope = explanation.envelope
    out.print(
        f"{envelope.protocol} {envelope.tool} target={envelope.target!r} "
        f"capability={envelope.capability} digest={envelope.action_digest[:16]}"
    )
    table = Table(show_edge=False)
    for column in ("line", "rule", "decision", "match", "why"):
        table.add_column(column, overflow="fold")
    decided = False
    hidden = 0
    for trace in explanation.traces:
        if not show_all and (
            decided or not trace.rule.head_matches(envelope.protocol, envelope.tool)
        ):
            hidden += 1
            continue
        mark = "yes" if trace.matched and not decided else ("(yes)" if trace.matched else "no")
        table.add_row(str(trace.rule.line), trace.rule.name, trace.rule.decision, mark, trace.why)
        decided = decided or trace.matched
    out.print(table)
    if hidden:
        out.print(f"({hidden} rules for other tools or after the deciding one; --all shows them)")
    result = explanation.decision
    out.print(
        f"decision: {result.decision} by {result.matched_rule}: {result.reason}"
        + (f" (try: {result.suggested_alternative})" if result.suggested_alternative else "")
    )
    out.print()
