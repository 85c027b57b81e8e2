"""``aegisctl policy``: check, explain, simulate and replay, run in-process and end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from policy_helpers import ACTOR, PACKS, action, counter_ids, pack

from aegisflow.cli.app import run
from aegisflow.cli.main import build
from aegisflow.cli.policy import SIMULATION_ACTOR
from aegisflow.cli.status import Exit
from aegisflow.ledger.ledger import Ledger
from aegisflow.policy.normalize import action_envelopes, shell_envelopes
from aegisflow.policy.record import decision_body

APP = build()
PR_WRITER = str(PACKS / "pr-writer.yaml")
RM = {"protocol": "shell", "tool": "shell.rm", "target": "/workspace", "capability": "delete"}


def aegisctl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(APP, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_reports_a_valid_pack(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = aegisctl(capsys, "policy", "check", PR_WRITER)
    assert code == Exit.SUCCESS
    assert out.startswith(f"ok: {PR_WRITER}: policy pr-writer, ")
    assert pack("pr-writer").content_hash in out


def test_check_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tool_policies:\n  rules:\n    - tool: shell.rm\n      decison: block\n")
    code, out, err = aegisctl(capsys, "policy", "check", PR_WRITER, str(bad))
    assert code == Exit.POLICY
    assert out.startswith("ok: ")
    assert f"{bad}:4:" in err
    assert "unknown key 'decison'" in err


def test_check_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yaml"
    code, out, _ = aegisctl(capsys, "policy", "check", "--json", PR_WRITER, str(missing))
    assert code == Exit.POLICY
    results = json.loads(out)
    assert [r["ok"] for r in results] == [True, False]
    assert results[0]["policy_hash"] == pack("pr-writer").content_hash
    assert "cannot read policy" in results[1]["error"]


def test_explain_shows_the_deciding_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = aegisctl(
        capsys, "policy", "explain", "-p", PR_WRITER, "--action", json.dumps(RM)
    )
    assert code == Exit.SUCCESS
    assert "decision: block by shell:shell.rm: destructive shell command" in out
    assert "use git clean -fdx via shell.git" in out


def test_explain_json_lists_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = aegisctl(
        capsys, "policy", "explain", "-p", PR_WRITER, "--json", "--action", json.dumps(RM)
    )
    assert code == Exit.SUCCESS
    (explained,) = json.loads(out)
    assert len(explained["rules"]) == len(pack("pr-writer").rules)
    first = next(r for r in explained["rules"] if r["matched"])
    assert first["rule"] == explained["result"]["matched_rule"] == "shell:shell.rm"
    (envelope,) = action_envelopes(RM, actor=SIMULATION_ACTOR)
    assert explained["action_digest"] == envelope.action_digest
    assert explained["action_digest"] != action(RM).action_digest  # the session is digested


def test_explain_shell_line_gives_the_strictest(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = aegisctl(
        capsys, "policy", "explain", "-p", PR_WRITER, "--shell", "git status && git push -f"
    )
    assert code == Exit.SUCCESS
    assert "decision: allow by git-everyday" in out
    assert "decision: block by git-force-push" in out
    assert out.rstrip().endswith("overall: block (strictest of 2 commands)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give exactly one of --action and --shell"),
        (("--action", "{", "--shell", "ls"), "give exactly one of --action and --shell"),
        (("--action", "{"), "--action: not valid JSON"),
        (("--action", "[1]"), "an action is a JSON object"),
        (("--action", '{"protocol": "shell"}'), "tool is required"),
        (("--action", '{"protocol": "x", "tool": "t", "capability": "read"}'), "protocol 'x'"),
        (("--action", "@/nonexistent/action.json"), "cannot read /nonexistent/action.json"),
    ],
)
def test_explain_rejects_bad_input(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, out, err = aegisctl(capsys, "policy", "explain", "-p", PR_WRITER, *args)
    assert code in (Exit.INVALID_INPUT, Exit.ERROR)
    assert message in err
    assert "Traceback" not in out + err


def test_simulate_table_and_expectations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    actions = tmp_path / "actions.jsonl"
    actions.write_text(
        "\n".join(
            [
                json.dumps({**RM, "expect": "block"}),
                "# a comment line",
                json.dumps(
                    {
                        "protocol": "shell",
                        "target": "/workspace",
                        "capability": "execute",
                        "parameters": {"command": "pytest -q && git push origin main"},
                        "expect": "allow",
                    }
                ),
            ]
        )
    )
    code, out, _ = aegisctl(
        capsys, "policy", "simulate", "-p", PR_WRITER, "--actions", str(actions), "--json"
    )
    assert code == Exit.POLICY
    results = json.loads(out)["results"]
    assert [(r["line"], r["decision"], r["ok"]) for r in results] == [
        (1, "block", True),
        (3, "review", False),
    ]
    assert results[1]["matched_rule"] == "git-push-protected"


def test_simulate_names_the_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    actions = tmp_path / "actions.jsonl"
    actions.write_text(json.dumps(RM) + "\n{not json}\n")
    code, _, err = aegisctl(
        capsys, "policy", "simulate", "-p", PR_WRITER, "--actions", str(actions)
    )
    assert code == Exit.INVALID_INPUT
    assert f"{actions}:2: not valid JSON" in err


@pytest.fixture
def recorded(make_git_ledger: Callable[[], Ledger], git_path: Path) -> Path:
    """A ledger holding pr-writer's decisions for a few actions, as the service records them."""
    policy = pack("pr-writer")
    ledger = make_git_ledger()
    lines = ["pytest -q", "rm -rf build", "git push origin feat/x", "cat README.md"]
    ids = counter_ids()
    for line in lines:
        for envelope in shell_envelopes(line, actor=ACTOR, cwd="/workspace", new_id=ids):  # type: ignore[arg-type]
            body = decision_body(envelope, policy.evaluate(envelope))
            ledger.append(ACTOR.session, "decision", body)
    ledger.append(ACTOR.session, "decision", {"envelope_id": "x", "decision": "allow"})
    ledger.close()
    return git_path


def test_replay_reports_what_would_change(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text(
        "name: stricter\n"
        "tool_policies:\n"
        "  default_decision: allow\n"
        "  rules:\n"
        "    - {protocol: shell, tool: shell.pytest, decision: block}\n"
        "    - {protocol: shell, tool: shell.git, decision: review}\n"
    )
    code, out, _ = aegisctl(
        capsys, "policy", "replay", "-p", str(stricter), "--ledger", str(recorded), "--json"
    )
    assert code == Exit.SUCCESS
    report = json.loads(out)
    assert (report["replayed"], report["skipped"]) == (4, 1)
    assert (report["newly_blocked"], report["newly_reviewed"], report["newly_allowed"]) == (1, 1, 1)
    assert report["summary"] == (
        "this change would have blocked 1 call, sent 1 call to review and allowed 1 more "
        "(4 replayed, 1 unchanged)"
    )
    changed = {
        c["tool"]: (c["before"]["decision"], c["after"]["decision"]) for c in report["changes"]
    }
    assert changed == {
        "shell.pytest": ("allow", "block"),
        "shell.git": ("allow", "review"),
        "shell.rm": ("block", "allow"),
    }


def test_replay_same_policy_changes_nothing(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = aegisctl(capsys, "policy", "replay", "-p", PR_WRITER, "--ledger", str(recorded))
    assert code == Exit.SUCCESS
    assert "no decision would change (4 replayed)" in out
    assert "1 decision entries have no recorded envelope" in out


def test_walkthrough_examples_meet_their_expectations(capsys: pytest.CaptureFixture[str]) -> None:
    """install.sh shows these; every line states the decision the walkthrough promises."""
    examples = str(PACKS / "examples" / "walkthrough.jsonl")
    code, out, _ = aegisctl(
        capsys, "policy", "simulate", "-p", PR_WRITER, "--actions", examples, "--json"
    )
    assert code == Exit.SUCCESS
    results = json.loads(out)["results"]
    assert len(results) == 8
    assert all(r["ok"] for r in results)
