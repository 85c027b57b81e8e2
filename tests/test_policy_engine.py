"""Policy evaluation: first match, strictest envelope, three-valued conditions, guards.

Small inline policies pin one behaviour each; properties over the shell corpus and
generated HTTP actions check that ``explain`` and ``evaluate`` never disagree.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import ACTOR, CORPUS, WORKSPACE, action, corpus, counter_ids, pack

from aegisflow.envelope import CAPABILITIES, PROTOCOLS, Envelope, envelope_from_action
from aegisflow.policy import Policy, load_policy
from aegisflow.policy.engine import (
    DEFAULT_RULE,
    MAX_MEMO,
    UNKNOWN_PROGRAM_RULE,
    UNPARSEABLE_RULE,
    Decision,
    Verdict,
)
from aegisflow.policy.model import STRICTNESS
from aegisflow.policy.normalize import shell_envelopes


def policy(*rule_lines: str, head: str = "") -> Policy:
    """A policy from rule lines (each a flow mapping), with optional tool_policies keys."""
    text = "tool_policies:\n" + head + "  rules:\n" + "".join(f"    - {r}\n" for r in rule_lines)
    return load_policy(text, source="t.yaml", name="t")


def envelopes(line: str, cwd: str = WORKSPACE) -> tuple[Envelope, ...]:
    return shell_envelopes(line, actor=ACTOR, cwd=cwd, new_id=counter_ids())  # type: ignore[arg-type]


def verdict(p: Policy, line: str, cwd: str = WORKSPACE) -> Verdict:
    return p.evaluate_all(envelopes(line, cwd))


def decide(p: Policy, line: str) -> Decision:
    return verdict(p, line).decision


def http(tool: str = "http.get", target: str = "x", capability: str = "read", **params: object):
    return action(
        {
            "protocol": "http",
            "tool": tool,
            "target": target,
            "capability": capability,
            "parameters": params,
        }
    )


# -- first match, default ----------------------------------------------------------------

FIRST_MATCH = policy(
    "{id: narrow, tool: http.get, target: 'secret/**', decision: block}",
    "{id: broad, tool: http.get, decision: allow}",
    "{id: posts, tool: http.post, capability: write, decision: review}",
    "{id: everything-else, decision: review}",
    head="  default_decision: block\n",
)


@pytest.mark.parametrize(
    ("tool", "target", "capability", "decision", "rule"),
    [
        ("http.get", "secret/key", "read", "block", "narrow"),
        ("http.get", "secret", "read", "block", "narrow"),
        ("http.get", "public/x", "read", "allow", "broad"),
        ("http.post", "x", "write", "review", "posts"),
        ("http.post", "x", "delete", "review", "everything-else"),
        ("http.put", "x", "write", "review", "everything-else"),
    ],
    ids=["narrow-first", "narrow-dir-itself", "broad-second", "posts", "cap-miss", "fallthrough"],
)
def test_first_match_wins(
    tool: str, target: str, capability: str, decision: str, rule: str
) -> None:
    result = FIRST_MATCH.evaluate(http(tool, target, capability))
    assert (result.decision, result.matched_rule) == (decision, rule)
    assert result.rule_line == {r.name: r.line for r in FIRST_MATCH.rules}[rule]


@pytest.mark.parametrize("default", ["allow", "review", "block"])
def test_default_decision_when_nothing_matches(default: str) -> None:
    p = policy(
        "{tool: http.get, decision: allow}",
        head=f"  default_decision: {default}\n  approvers: [role:ops]\n  approval_expiry: 5m\n",
    )
    result = p.evaluate(http("http.delete", capability="delete"))
    assert result.decision == default
    assert result.matched_rule == DEFAULT_RULE == "default"
    assert result.reason == f"no rule matched; the policy's default decision is {default}"
    assert result.rule_line is None
    assert (result.policy, result.policy_hash) == ("t", p.content_hash)
    if default == "review":
        assert (result.approvers, result.approval_expiry) == (("role:ops",), 300)
    else:
        assert (result.approvers, result.approval_expiry) == ((), None)


def test_omitted_default_is_block() -> None:
    result = policy("{tool: http.get, decision: allow}").evaluate(http("http.put"))
    assert (result.decision, result.matched_rule) == ("block", "default")


# -- strictest wins across a line ----------------------------------------------------------

LINE_POLICY = policy(
    "{tool: shell.ls, decision: allow}",
    "{tool: shell.echo, decision: allow}",
    "{tool: shell.curl, decision: review}",
    "{tool: shell.wget, decision: review}",
    "{tool: shell.rm, decision: block}",
    "{tool: shell.shred, decision: block}",
)


@pytest.mark.parametrize(
    ("line", "decision", "tool", "position"),
    [
        ("ls", "allow", "shell.ls", 0),
        ("ls; echo hi", "allow", "shell.ls", 0),
        ("ls && curl x", "review", "shell.curl", 1),
        ("curl x | wget y", "review", "shell.curl", 0),
        ("wget y; curl x", "review", "shell.wget", 0),
        ("ls; curl x; rm y; echo z", "block", "shell.rm", 2),
        ("rm a; shred b", "block", "shell.rm", 0),
        ("shred b; curl x; rm a", "block", "shell.shred", 0),
        ("echo $(rm -rf /)", "block", "shell.rm", 0),
        ("ls; unknown-tool", "block", "shell.unknown-tool", 1),
    ],
    ids=[
        "single",
        "all-allow-first",
        "review-beats-allow",
        "first-of-reviews",
        "first-of-reviews-reordered",
        "block-beats-all",
        "first-of-blocks",
        "first-of-blocks-before-review",
        "substitution-counts",
        "default-block",
    ],
)
def test_strictest_wins(line: str, decision: str, tool: str, position: int) -> None:
    result = verdict(LINE_POLICY, line)
    envelope, deciding = result.deciding
    assert (deciding.decision, envelope.tool) == (decision, tool)
    assert result.items[position][0] is envelope
    assert result.decision is deciding


def test_evaluate_all_needs_an_envelope() -> None:
    with pytest.raises(ValueError, match="at least one envelope"):
        LINE_POLICY.evaluate_all([])


def test_evaluate_all_decides_each_envelope_alone() -> None:
    result = verdict(LINE_POLICY, "ls; rm x; curl y")
    assert [d.decision for _, d in result.items] == ["allow", "block", "review"]
    assert [LINE_POLICY.evaluate(e) for e, _ in result.items] == [d for _, d in result.items]


# -- three-valued conditions ---------------------------------------------------------------

BLOCK_ENV = policy(
    "{id: no-env, protocol: shell, when: {paths: ['**/.env']}, decision: block}",
    "{id: rest, tool: 'shell.*', decision: allow}",
)
ALLOW_MD = policy(
    "{id: md, tool: shell.cat, when: {paths: ['**/*.md']}, decision: allow}",
    head="  default_decision: review\n",
)
REVIEW_ARGS = policy(
    "{id: prod, tool: shell.deploy, when: {args: ['prod*']}, decision: review}",
    "{id: deploy-named, tool: shell.deploy, when: {args: ['dev', 'test']}, decision: allow}",
    head="  default_decision: block\n",
)


@pytest.mark.parametrize(
    ("p", "line", "decision", "rule"),
    [
        # restrict rules take "maybe": an expansion may name .env
        (BLOCK_ENV, "cat $F", "block", "no-env"),
        (BLOCK_ENV, "cat .e*", "block", "no-env"),
        (BLOCK_ENV, "cat ~/proj/.e?v", "block", "no-env"),
        (BLOCK_ENV, "cat {a,.env}", "block", "no-env"),
        (BLOCK_ENV, "cat < $F", "block", "no-env"),
        (BLOCK_ENV, "cd $D && cat x", "block", "no-env"),
        # ...but not words that cannot expand to .env
        (BLOCK_ENV, "cat *", "allow", "rest"),
        (BLOCK_ENV, "cat *.md", "allow", "rest"),
        (BLOCK_ENV, "cat README.md", "allow", "rest"),
        # any path is enough for a restrict rule
        (BLOCK_ENV, "cat README.md .env", "block", "no-env"),
        (BLOCK_ENV, "cat README.md sub/.env", "block", "no-env"),
        (BLOCK_ENV, "echo x > .env", "block", "no-env"),
        # allow rules never take "maybe"
        (ALLOW_MD, "cat $F", "review", "default"),
        (ALLOW_MD, "cat docs/*.md", "review", "default"),
        (ALLOW_MD, "cd $D && cat README.md", "review", "default"),
        # allow rules need every path to match, and at least one
        (ALLOW_MD, "cat README.md", "allow", "md"),
        (ALLOW_MD, "cat README.md docs/guide.md", "allow", "md"),
        (ALLOW_MD, "cat README.md .env", "review", "default"),
        (ALLOW_MD, "cat README.md $F", "review", "default"),
        (ALLOW_MD, "cat", "review", "default"),
        # args: any for a restrict rule, all for an allow rule
        (REVIEW_ARGS, "deploy dev prod-eu", "review", "prod"),
        (REVIEW_ARGS, "deploy $ENV", "review", "prod"),
        (REVIEW_ARGS, "deploy dev test", "allow", "deploy-named"),
        (REVIEW_ARGS, "deploy dev staging", "block", "default"),
        (REVIEW_ARGS, "deploy", "block", "default"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_three_valued_conditions(p: Policy, line: str, decision: str, rule: str) -> None:
    result = decide(p, line)
    assert (result.decision, result.matched_rule) == (decision, rule), result.reason


def test_maybe_explanations_say_why() -> None:
    (envelope,) = envelopes("cat $F")
    block_trace = BLOCK_ENV.explain(envelope).traces[0]
    assert block_trace.matched
    assert "a block rule takes it" in block_trace.why
    allow_trace = ALLOW_MD.explain(envelope).traces[0]
    assert not allow_trace.matched
    assert "an allow rule does not take it" in allow_trace.why


# -- subcommands, flags, global flags ----------------------------------------------------

GH = policy(
    "{id: merge, tool: shell.gh, when: {subcommand: ['pr merge', 'repo delete']}, decision: block}",
    "{id: pr-reads, tool: shell.gh, when: {subcommand: ['pr view', 'pr list']}, decision: allow}",
    "{id: gh, tool: shell.gh, decision: review}",
)


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("gh pr merge 12", "merge"),
        ("gh pr merge", "merge"),
        ("gh -R o/r pr merge 12", "merge"),
        ("gh repo delete o/r --yes", "merge"),
        ("gh pr view 12", "pr-reads"),
        ("gh pr list", "pr-reads"),
        ("gh pr", "gh"),
        ("gh merge pr", "gh"),
        ("gh pr create", "gh"),
        ("gh issue merge", "gh"),
        ("gh $X merge", "merge"),
        ("gh pr $Y", "merge"),
    ],
    ids=lambda v: v,
)
def test_multiword_subcommand(line: str, rule: str) -> None:
    assert decide(GH, line).matched_rule == rule


GIT = policy(
    "{id: force, tool: shell.git, when: {subcommand: push, flags: [--force, -f]}, decision: block}",
    "{id: config, tool: shell.git, when: {global_flags: [-c, --exec-path]}, decision: review}",
    "{id: git, tool: shell.git, decision: allow}",
)


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("git push --force", "force"),
        ("git push --force=true origin", "force"),
        ("git push --forc", "force"),
        ("git push --fo", "force"),
        ("git push -f", "force"),
        ("git push -uf origin x", "force"),
        ("git push origin main --force", "force"),
        ("git push --f", "force"),  # any prefix counts, as in git (--m is --mirror)
        ("git push --forced", "git"),
        ("git push --force-with-lease", "git"),
        ("git push origin", "git"),
        ("git push -- --force", "git"),
        ("git push $OPTS", "force"),
        ("git pull --force", "git"),
        ("git -c core.sshCommand=x fetch", "config"),
        ("git -C repo -c a=b log", "config"),
        ("git --exec-path=/tmp status", "config"),
        ("git switch -c new-branch", "git"),
        ("git commit -c HEAD", "git"),
        ("git -C -c status", "git"),
    ],
    ids=lambda v: v,
)
def test_flags_and_global_flags(line: str, rule: str) -> None:
    assert decide(GIT, line).matched_rule == rule


# -- parameters ----------------------------------------------------------------------------

PARAMS = policy(
    "{id: label, tool: http.a, when: {parameters: {labels: urgent}}, decision: block}",
    "{id: int, tool: http.b, when: {parameters: {n: 1}}, decision: block}",
    "{id: bool, tool: http.c, when: {parameters: {dry_run: true}}, decision: block}",
    "{id: none, tool: http.d, when: {parameters: {ref: null}}, decision: block}",
    "{id: glob-key, tool: http.e, when: {parameters: {env.GIT_*: '*'}}, decision: block}",
    "{id: nested, tool: http.f, when: {parameters: {a.b.c: 'x*'}}, decision: block}",
    "{id: several, tool: http.g, when: {parameters: {branch: [main, 'release/*'], force: true}}, "
    "decision: block}",
    "{id: string-one, tool: http.h, when: {parameters: {n: '1'}}, decision: block}",
    head="  default_decision: allow\n",
)


@pytest.mark.parametrize(
    ("tool", "params", "rule"),
    [
        ("http.a", {"labels": ["bug", "urgent"]}, "label"),
        ("http.a", {"labels": "urgent"}, "label"),
        ("http.a", {"labels": ["bug"]}, "default"),
        ("http.a", {"labels": []}, "default"),
        ("http.a", {}, "default"),
        ("http.b", {"n": 1}, "int"),
        ("http.b", {"n": [3, 1]}, "int"),
        ("http.b", {"n": "1"}, "default"),
        ("http.b", {"n": True}, "default"),
        ("http.b", {"n": 2}, "default"),
        ("http.c", {"dry_run": True}, "bool"),
        ("http.c", {"dry_run": 1}, "default"),
        ("http.c", {"dry_run": "true"}, "default"),
        ("http.d", {"ref": None}, "none"),
        ("http.d", {}, "default"),
        ("http.d", {"ref": "main"}, "default"),
        ("http.e", {"env": {"GIT_SSH_COMMAND": "ssh -i k"}}, "glob-key"),
        ("http.e", {"env": {"PATH": "/bin", "GIT_DIR": ""}}, "glob-key"),
        ("http.e", {"env": {"PATH": "/bin"}}, "default"),
        ("http.e", {"env": "GIT_DIR=x"}, "default"),
        ("http.e", {"GIT_DIR": "x"}, "default"),
        ("http.f", {"a": {"b": {"c": "xyz"}}}, "nested"),
        ("http.f", {"a": {"b": {"c": "y"}}}, "default"),
        ("http.f", {"a": {"b": "c"}}, "default"),
        ("http.f", {"a.b.c": "x"}, "default"),
        ("http.g", {"branch": "release/1.2", "force": True}, "several"),
        ("http.g", {"branch": "main", "force": False}, "default"),
        ("http.g", {"branch": "feat/x", "force": True}, "default"),
        ("http.h", {"n": "1"}, "string-one"),
        ("http.h", {"n": 1}, "default"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_parameter_conditions(tool: str, params: dict[str, object], rule: str) -> None:
    envelope = http(tool, **params)
    assert PARAMS.evaluate(envelope).matched_rule == rule
    assert PARAMS.explain(envelope).decision == PARAMS.evaluate(envelope)


def test_top_level_glob_parameter_key_evaluate_agrees_with_explain() -> None:
    """BUG: Rule.needs_parameter is the literal key "GIT_*", so evaluate skips the rule.

    explain() (Rule.check) matches the envelope and says block; evaluate() takes the
    needs_parameter shortcut, never checks the rule and returns the default allow.
    """
    p = policy(
        "{id: git-vars, protocol: http, when: {parameters: {'GIT_*': '*'}}, decision: block}",
        head="  default_decision: allow\n",
    )
    envelope = http(GIT_DIR="/elsewhere")
    assert p.explain(envelope).decision.matched_rule == "git-vars"
    assert p.evaluate(envelope) == p.explain(envelope).decision


# -- guards: never allow what cannot be checked -------------------------------------------

ALLOW_ALL_SHELL = "{id: all-shell, tool: 'shell.*', decision: allow}"


@pytest.mark.parametrize(
    ("line", "builtin"),
    [
        ("echo 'unterminated", UNPARSEABLE_RULE),
        ("ls &&", UNPARSEABLE_RULE),
        ('bash -c "$SCRIPT"', UNPARSEABLE_RULE),
        ("$CMD x", UNKNOWN_PROGRAM_RULE),
        ('"$(which rm)" -rf /', UNKNOWN_PROGRAM_RULE),
        ("sudo $CMD", UNKNOWN_PROGRAM_RULE),
        ("`echo rm` x", UNKNOWN_PROGRAM_RULE),
    ],
    ids=["quote", "dangling-and", "bash-c-variable", "variable", "substitution", "sudo", "tick"],
)
@pytest.mark.parametrize("unparseable", ["block", "review"])
def test_guards_override_allow(line: str, builtin: str, unparseable: str) -> None:
    p = policy(
        ALLOW_ALL_SHELL,
        head=f"  unparseable: {unparseable}\n  approvers: [role:sec]\n  approval_expiry: 2h\n",
    )
    result = decide(p, line)
    assert (result.decision, result.matched_rule) == (unparseable, builtin)
    assert result.rule_line is None
    assert result.suggested_alternative
    if unparseable == "review":
        assert (result.approvers, result.approval_expiry) == (("role:sec",), 7200)
    else:
        assert (result.approvers, result.approval_expiry) == ((), None)


def test_unparseable_reason_carries_the_parse_error() -> None:
    (envelope,) = envelopes("echo 'x")
    result = policy(ALLOW_ALL_SHELL).evaluate(envelope)
    assert result.reason == f"cannot check this command: {envelope.parameters['parse_error']}"


def test_default_unparseable_is_block() -> None:
    assert decide(policy(ALLOW_ALL_SHELL), "$CMD").decision == "block"


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("echo 'x", "no-unparseable"),
        ("$CMD x", "dynamic"),
    ],
    ids=["unparseable", "dynamic-program"],
)
def test_stricter_rule_decision_is_kept(line: str, rule: str) -> None:
    p = policy(
        "{id: no-unparseable, tool: shell.unparseable, decision: block}",
        "{id: dynamic, tool: 'shell.$*', decision: block}",
        ALLOW_ALL_SHELL,
        head="  unparseable: review\n",
    )
    result = decide(p, line)
    assert (result.decision, result.matched_rule) == ("block", rule)


def test_equal_rule_decision_is_kept() -> None:
    p = policy(
        "{id: dynamic, tool: 'shell.$*', decision: review, reason: mine}",
        head="  unparseable: review\n",
    )
    result = decide(p, "$CMD x")
    assert (result.decision, result.matched_rule, result.reason) == ("review", "dynamic", "mine")


def test_guard_only_applies_to_shell() -> None:
    p = policy("{tool: http.get, decision: allow}")
    envelope = http(parse_error="x", unknown=[0])
    assert p.evaluate(envelope).decision == "allow"


def test_guard_reads_the_envelope_not_the_parser() -> None:
    p = policy(ALLOW_ALL_SHELL)
    crafted = Envelope(
        envelope_id="00000000-0000-4000-8000-000000000001",
        actor=ACTOR,
        protocol="shell",
        tool="shell.ls",
        target=WORKSPACE,
        capability="read",
        parameters={"argv": ["ls"], "parse_error": "made up"},
    )
    assert p.evaluate(crafted).matched_rule == UNPARSEABLE_RULE


@pytest.mark.parametrize(
    "line", ["/bin/r? -rf /", "r[m] -rf /", "/usr/bin/*rm x", "sudo /bin/r? x"], ids=lambda v: v
)
def test_glob_program_is_never_allowed(line: str) -> None:
    """BUG: a program named by a shell glob is only known once the shell runs.

    shell_envelopes records it under parameters.globs (not .unknown), and the engine's
    guard only looks at ``0 in parameters.unknown``, so ``/bin/r? -rf /`` is allowed by
    any rule that allows ``shell.*``.
    """
    result = decide(policy(ALLOW_ALL_SHELL), line)
    assert result.decision == "block"
    assert result.matched_rule.startswith("builtin:")


# -- review decisions ---------------------------------------------------------------------

REVIEWS = policy(
    "{id: own, tool: http.a, decision: review, approvers: [principal:ana], approval_expiry: 10m}",
    "{id: inherit, tool: http.b, decision: review}",
    "{id: allowed, tool: http.c, decision: allow, "
    "credential: {type: github_app_jwt, permissions: {contents: read}, ttl: 60}}",
    "{id: pr, tool: http.d, decision: review, reason: a human looks, "
    "suggested_alternative: open a draft, "
    "credential: {type: github_app_jwt, permissions: {pull_requests: write, contents: read}}}",
    head="  approvers: [role:reviewer, role:admin]\n  approval_expiry: 1h\n",
)


@pytest.mark.parametrize(
    ("tool", "approvers", "expiry"),
    [
        ("http.a", ("principal:ana",), 600),
        ("http.b", ("role:reviewer", "role:admin"), 3600),
        ("http.d", ("role:reviewer", "role:admin"), 3600),
        ("http.c", (), None),
    ],
    ids=["rule-approvers", "policy-approvers", "with-credential", "allow-has-none"],
)
def test_review_decisions_carry_approvers(
    tool: str, approvers: tuple[str, ...], expiry: int | None
) -> None:
    result = REVIEWS.evaluate(http(tool))
    assert (result.approvers, result.approval_expiry) == (approvers, expiry)
    data = result.to_dict()
    if result.decision == "review":
        assert (data["approvers"], data["approval_expiry"]) == (list(approvers), expiry)
    else:
        assert "approvers" not in data
        assert "approval_expiry" not in data


def test_decision_to_dict() -> None:
    result = REVIEWS.evaluate(http("http.d"))
    assert result.to_dict() == {
        "decision": "review",
        "matched_rule": "pr",
        "reason": "a human looks",
        "policy": "t",
        "policy_hash": REVIEWS.content_hash,
        "suggested_alternative": "open a draft",
        "credential": {
            "type": "github_app_jwt",
            "scope": "pull_requests:write,contents:read",
            "ttl": 600,
        },
        "approvers": ["role:reviewer", "role:admin"],
        "approval_expiry": 3600,
    }
    allowed = REVIEWS.evaluate(http("http.c")).to_dict()
    assert allowed["credential"] == {"type": "github_app_jwt", "scope": "contents:read", "ttl": 60}
    assert set(allowed) == {
        "decision",
        "matched_rule",
        "reason",
        "policy",
        "policy_hash",
        "credential",
    }


# -- explain ------------------------------------------------------------------------------


def test_explain_lists_every_rule() -> None:
    envelope = http("http.get", "secret/k")
    explanation = FIRST_MATCH.explain(envelope)
    assert [t.rule.name for t in explanation.traces] == [r.name for r in FIRST_MATCH.rules]
    assert [t.matched for t in explanation.traces] == [True, True, False, True]
    assert "tool 'http.get' is not 'http.post'" in explanation.traces[2].why
    assert explanation.decision == FIRST_MATCH.evaluate(envelope)
    data = explanation.to_dict()
    assert data["action_digest"] == envelope.action_digest
    assert data["result"] == explanation.decision.to_dict()
    assert [r["rule"] for r in data["rules"]] == [r.name for r in FIRST_MATCH.rules]
    assert data["rules"][0] == {
        "rule": "narrow",
        "line": FIRST_MATCH.rules[0].line,
        "decision": "block",
        "matched": True,
        "why": "protocol, tool, target and capability match",
    }


def _check_explain(p: Policy, envelope: Envelope) -> None:
    decided = p.evaluate(envelope)
    explanation = p.explain(envelope)
    assert explanation.decision == decided, (envelope.tool, envelope.parameters)
    assert [t.rule for t in explanation.traces] == list(p.rules)
    first = next((t.rule for t in explanation.traces if t.matched), None)
    if decided.matched_rule == DEFAULT_RULE:
        assert first is None
    elif decided.matched_rule.startswith("builtin:"):
        assert first is None or STRICTNESS[first.decision] < STRICTNESS[decided.decision]
    else:
        assert first is not None
        assert (first.name, first.line, first.decision) == (
            decided.matched_rule,
            decided.rule_line,
            decided.decision,
        )


CORPUS_LINES = [line for path in sorted(CORPUS.glob("*.txt")) for line in corpus(path.name)]


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.txt")))
def test_explain_equals_evaluate_for_every_corpus_line(name: str) -> None:
    p = pack("pr-writer")
    lines = corpus(name)
    assert lines
    for line in lines:
        for envelope in envelopes(line):
            _check_explain(p, envelope)


@settings(deadline=None, max_examples=150)
@given(
    st.lists(st.sampled_from(CORPUS_LINES), min_size=1, max_size=3),
    st.sampled_from([" && ", "; ", " | ", " || "]),
    st.sampled_from([WORKSPACE, "/", "~", "/etc", "/workspace/sub", "rel"]),
)
def test_explain_equals_evaluate_for_combined_corpus_lines(
    lines: list[str], joiner: str, cwd: str
) -> None:
    p = pack("pr-writer")
    for envelope in envelopes(joiner.join(lines), cwd):
        _check_explain(p, envelope)


_TOOLS = [
    "github.get_file_contents",
    "github.list_commits",
    "github.create_pull_request",
    "github.merge_pull_request",
    "github.delete_branch",
    "github.push_files",
    "github.create_or_update_file",
    "github.add_issue_comment",
    "http.get",
    "http.post",
    "http.delete",
    "sql.select",
    "sql.drop_table",
    "file.read",
    "file.write",
    "file.delete",
    "shell.rm",
    "shell.ls",
    "shell.git",
    "shell.unparseable",
    "custom.thing",
]
ACTIONS = st.fixed_dictionaries(
    {
        "protocol": st.sampled_from(PROTOCOLS),
        "tool": st.sampled_from(_TOOLS),
        "target": st.sampled_from(
            ["", "aegisflow/aegisflow", "/workspace/a.py", "/workspace/.env", "/etc/passwd", "x"]
        ),
        "capability": st.sampled_from(CAPABILITIES),
    },
    optional={
        "parameters": st.fixed_dictionaries(
            {},
            optional={
                "branch": st.sampled_from(["main", "feat/x", "release/1", "other"]),
                "env": st.dictionaries(
                    st.sampled_from(["LD_PRELOAD", "GIT_DIR", "PATH", "HOME"]),
                    st.sampled_from(["x", ""]),
                    max_size=2,
                ),
            },
        ),
    },
)


@settings(deadline=None, max_examples=300)
@given(ACTIONS)
def test_explain_equals_evaluate_for_generated_actions(data: dict[str, object]) -> None:
    # Built directly, not through the HTTP normalizer: any envelope, even one the
    # normalizer would refuse (shell parameters other than command/argv), must agree.
    envelope = envelope_from_action(data, actor=ACTOR, new_id=counter_ids())  # type: ignore[arg-type]
    _check_explain(pack("pr-writer"), envelope)


# -- memo -----------------------------------------------------------------------------------


def test_memo_is_bounded_and_results_stay_correct() -> None:
    p = policy(
        "{id: sevens, tool: 't.*7', decision: block}",
        "{id: evens, tool: ['t.*0', 't.*2', 't.*4', 't.*6', 't.*8'], decision: allow}",
        "{id: rest, tool: 't.*', decision: review}",
    )

    def expected(i: int) -> str:
        if i % 10 == 7:
            return "sevens"
        return "evens" if i % 2 == 0 else "rest"

    for _ in range(2):
        for i in range(10_000):
            assert p.evaluate(http(f"t.{i}")).matched_rule == expected(i)
        assert len(p._memo) <= MAX_MEMO
    assert p.evaluate(http("u.1")).matched_rule == "default"
    assert len(p._memo) <= MAX_MEMO
