"""Strict policy loading: every mistake is a PolicyLoadError naming file and line.

The error table pairs a YAML snippet with a substring of the message and the line the
message must name (``p.yaml:LINE:``). Positive tests pin what a valid policy compiles
to; a hypothesis property checks that no input makes the loader raise anything but
:class:`PolicyLoadError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import random

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from policy_helpers import PACKS, decide_action, decide_line

from aegisflow.errors import PolicyError
from aegisflow.policy import Policy, PolicyLoadError, load_policy
from aegisflow.policy.glob import EMPTY_SET
from aegisflow.policy.loader import DEFAULT_APPROVAL_EXPIRY, MAX_POLICY_BYTES

SOURCE = "p.yaml"
RULES = "tool_policies:\n  rules:\n"  # rules start on line 3
PR_WRITER = (PACKS / "pr-writer.yaml").read_bytes()


def load(text: str | bytes, name: str | None = None) -> Policy:
    return load_policy(text, source=SOURCE, name=name)


def rules(*lines: str) -> str:
    """A policy whose rules are ``lines`` (each already indented), rule one on line 3."""
    return RULES + "".join(line + "\n" for line in lines)


CRED = "credential: {type: github_app_jwt, permissions: {contents: read}"

# (id, yaml, substring of the message, line in "p.yaml:LINE:")
ERRORS: list[tuple[str, str, str, int]] = [
    # -- the document
    ("not-a-mapping-list", "- a\n- b\n", "a policy is a mapping with a 'tool_policies' key", 1),
    ("not-a-mapping-scalar", "just words\n", "a policy is a mapping", 1),
    ("empty-document", "", "a policy is a mapping", 1),
    ("comment-only-document", "# nothing\n", "a policy is a mapping", 1),
    ("tool-policies-missing", "name: p\n", "'tool_policies' must be a mapping", 1),
    (
        "tool-policies-a-list",
        "name: p\ntool_policies: []\n",
        "'tool_policies' must be a mapping",
        2,
    ),
    (
        "unknown-top-level-key",
        "name: x\nfoo: 1\ntool_policies: {}\n",
        "unknown key 'foo' in the policy (allowed: description, name, tool_policies)",
        2,
    ),
    ("bad-policy-name", "name: 'a b'\ntool_policies: {}\n", "name must be 1-64 letters", 1),
    ("description-not-text", "description: 5\ntool_policies: {}\n", "description must be", 1),
    ("non-string-key", "1: x\n", "keys must be strings", 1),
    # -- tool_policies
    (
        "unknown-tool-policies-key",
        "tool_policies:\n  default_decision: allow\n  bogus: 1\n",
        "unknown key 'bogus' in tool_policies (allowed: approval_expiry, approvers, "
        "default_decision, enabled, rules, unparseable)",
        3,
    ),
    (
        "enabled-false",
        "tool_policies:\n  enabled: false\n",
        "tool_policies.enabled must be true",
        2,
    ),
    ("enabled-quoted-yes", "tool_policies:\n  enabled: 'yes'\n", "enabled must be true", 2),
    (
        "invalid-default-decision",
        "tool_policies:\n  default_decision: deny\n",
        "default_decision must be allow, review or block, got 'deny'",
        2,
    ),
    (
        "default-decision-unquoted-no",
        "tool_policies:\n  default_decision: no\n",
        "got False (YAML reads unquoted yes/no/on/off as booleans; quote the value)",
        2,
    ),
    (
        "unparseable-allow",
        "tool_policies:\n  unparseable: allow\n",
        "unparseable must be review or block",
        2,
    ),
    (
        "unparseable-invalid",
        "tool_policies:\n  unparseable: maybe\n",
        "unparseable must be allow, review or block, got 'maybe'",
        2,
    ),
    ("rules-not-a-list", "tool_policies:\n  rules: {a: 1}\n", "rules must be a list", 2),
    (
        "policy-approver-format",
        "tool_policies:\n  approvers: ['x:y']\n",
        "approver 'x:y' must be role:<name> or principal:<name>",
        2,
    ),
    # -- durations
    ("duration-zero", "tool_policies:\n  approval_expiry: 0\n", "(got 0)", 2),
    ("duration-8d", "tool_policies:\n  approval_expiry: 8d\n", "at most 7d (got '8d')", 2),
    ("duration-1x", "tool_policies:\n  approval_expiry: '1x'\n", "(got '1x')", 2),
    ("duration-true", "tool_policies:\n  approval_expiry: true\n", "(got True)", 2),
    ("duration-negative", "tool_policies:\n  approval_expiry: -5\n", "(got -5)", 2),
    (
        "rule-duration-8d",
        rules("    - decision: review", "      approval_expiry: 8d"),
        "rule *:*: approval_expiry must be a duration",
        4,
    ),
    # -- unknown keys inside rules
    (
        "unknown-rule-key",
        rules("    - protocol: shell", "      decision: allow", "      colour: red"),
        "unknown key 'colour' in rule #1 (allowed: approval_expiry, approvers, capability, "
        "credential, decision, description, id, protocol, reason, suggested_alternative, "
        "target, tool, when)",
        5,
    ),
    (
        "unknown-rule-key-with-id",
        rules("    - {id: r1, decision: allow}", "    - id: r2", "      colr: 1"),
        "unknown key 'colr' in rule r2 (allowed: ",
        5,
    ),
    (
        "unknown-when-key",
        rules("    - protocol: shell", "      decision: block", "      when:", "        arg: [x]"),
        "unknown key 'arg' in rule shell:* when (allowed: args, flags, global_flags, "
        "parameters, paths, subcommand)",
        6,
    ),
    (
        "unknown-credential-key",
        rules(
            "    - protocol: git",
            "      decision: allow",
            "      credential:",
            "        type: github_app_jwt",
            "        permissions: {contents: read}",
            "        scope: x",
        ),
        "unknown key 'scope' in rule git:* credential "
        "(allowed: deliver, name, permissions, ttl, type)",
        8,
    ),
    # -- decisions
    (
        "decision-unquoted-no",
        rules("    - protocol: shell", "      decision: no"),
        "rule shell:*: decision must be allow, review or block, got False (YAML reads "
        "unquoted yes/no/on/off as booleans; quote the value)",
        4,
    ),
    (
        "decision-unquoted-on",
        rules("    - {protocol: shell, decision: on}"),
        "got True (YAML reads unquoted",
        3,
    ),
    (
        "decision-missing",
        rules("    - protocol: shell", "      tool: shell.ls"),
        "rule shell:shell.ls: has no decision (allow, review or block)",
        3,
    ),
    ("decision-a-list", rules("    - decision: [allow]"), "got ['allow']", 3),
    # -- protocols, capabilities, globs
    (
        "protocol-typo",
        rules("    - protocol: shel", "      decision: allow"),
        "rule #1: protocol 'shel' is not one of mcp, git, shell, sql, http, file",
        3,
    ),
    (
        "protocol-glob-matches-nothing",
        rules("    - {protocol: 'x*', decision: allow}"),
        "protocol 'x*' matches none of mcp, git, shell, sql, http, file",
        3,
    ),
    (
        "protocol-list-with-typo",
        rules("    - {id: r, protocol: [shell, gti], decision: allow}"),
        "rule r: protocol 'gti' is not one of",
        3,
    ),
    (
        "capability-unknown",
        rules("    - {capability: destroy, decision: block}"),
        "capability 'destroy' is not one of read, write, delete, execute, deploy, approve",
        3,
    ),
    (
        "tool-glob-unclosed-class",
        rules("    - {tool: 'shell.[a', decision: allow}"),
        "glob 'shell.[a': '[' at position 6 is never closed",
        3,
    ),
    (
        "tool-glob-empty-class",
        rules("    - {tool: 'shell.[]', decision: allow}"),
        "glob 'shell.[]'",
        3,
    ),
    (
        "tool-empty-list",
        rules("    - {id: x, tool: [], decision: allow}"),
        "tool must be a string or a non-empty list of strings",
        3,
    ),
    (
        "target-glob-partial-globstar",
        rules("    - {target: 'a**b', decision: allow}"),
        "'**' must be a whole path segment",
        3,
    ),
    (
        "when-paths-bad-glob",
        rules("    - decision: block", "      when:", "        paths: ['a/**b']"),
        "rule *:*: glob 'a/**b': '**' must be a whole path segment",
        4,
    ),
    (
        "when-args-triple-star",
        rules("    - decision: block", "      when:", "        args: ['a***']"),
        "'***' has no meaning",
        4,
    ),
    (
        "when-subcommand-bad-glob",
        rules("    - decision: block", "      when: {subcommand: ['[x']}"),
        "glob '[x'",
        4,
    ),
    (
        "when-parameter-value-bad-glob",
        rules("    - decision: block", "      when:", "        parameters: {branch: 'm[ain'}"),
        "glob 'm[ain'",
        4,
    ),
    # -- conditions
    (
        "when-empty-mapping",
        rules("    - decision: block", "      when: {}"),
        "rule *:*: when must be a non-empty mapping of conditions",
        4,
    ),
    (
        "when-null",
        rules("    - decision: block", "      when:"),
        "when must be a non-empty mapping of conditions",
        4,
    ),
    (
        "when-a-list",
        rules("    - decision: block", "      when: [flags]"),
        "when must be a non-empty mapping",
        4,
    ),
    (
        "flags-empty-list",
        rules("    - decision: block", "      when:", "        flags: []"),
        "flags must be a non-empty string or list of strings",
        5,
    ),
    (
        "args-empty-string",
        rules("    - decision: block", "      when:", "        args: ''"),
        "args must be a non-empty string or list of strings",
        5,
    ),
    (
        "flag-without-dash",
        rules("    - decision: block", "      when:", "        flags: [force]"),
        "flags must start with '-': 'force'",
        5,
    ),
    (
        "global-flag-bare-dash",
        rules("    - decision: block", "      when:", "        global_flags: ['-']"),
        "flags must start with '-': '-'",
        5,
    ),
    (
        "flag-double-dash-only",
        rules("    - decision: block", "      when: {flags: ['--']}"),
        "flags must start with '-': '--'",
        4,
    ),
    (
        "parameters-empty",
        rules("    - decision: block", "      when:", "        parameters: {}"),
        "when.parameters must be a non-empty mapping",
        5,
    ),
    (
        "parameter-float-value",
        rules("    - decision: block", "      when:", "        parameters: {x: 1.5}"),
        "parameter 'x': values are strings, integers, booleans or null",
        5,
    ),
    (
        "parameter-no-values",
        rules("    - decision: block", "      when:", "        parameters:", "          x: []"),
        "parameter 'x' lists no values",
        6,
    ),
    # -- YAML itself
    (
        "duplicate-yaml-key",
        rules("    - protocol: shell", "      decision: allow", "      decision: block"),
        "duplicate key 'decision'",
        5,
    ),
    (
        "duplicate-top-level-key",
        "name: a\ntool_policies: {}\nname: b\n",
        "duplicate key 'name'",
        3,
    ),
    (
        "invalid-yaml-unclosed-flow",
        "tool_policies:\n  rules: [\n    - x\n",
        "not valid YAML",
        3,
    ),
    ("invalid-yaml-bad-indent", "a: b\n  c: d\n", "not valid YAML: mapping values", 2),
    ("invalid-yaml-tab", "tool_policies:\n\trules: []\n", "not valid YAML", 2),
    ("yaml-python-tag", "name: !!python/name:os.system\n", "not valid YAML", 1),
    # -- names and ids
    (
        "duplicate-rule-names",
        rules(
            "    - protocol: shell",
            "      tool: shell.cat",
            "      decision: block",
            "    - protocol: shell",
            "      tool: shell.cat",
            "      decision: allow",
        ),
        "rule shell:shell.cat: has the same name as the rule on line 3; give one of them an 'id'",
        6,
    ),
    (
        "duplicate-ids",
        rules("    - {id: r, tool: a, decision: allow}", "    - {id: r, tool: b, decision: allow}"),
        "rule r: has the same name as the rule on line 3",
        4,
    ),
    (
        "list-tool-without-id",
        rules("    - tool: [a, b]", "      decision: allow"),
        "rule #1: a rule whose protocol or tool is a list needs an 'id'",
        3,
    ),
    (
        "list-protocol-without-id",
        rules("    - {protocol: [git, mcp], tool: x, decision: allow}"),
        "needs an 'id'",
        3,
    ),
    (
        "reserved-id-approved",
        rules("    - id: approved:x", "      decision: allow"),
        "id 'approved:x' is reserved",
        3,
    ),
    (
        "reserved-id-builtin",
        rules("    - decision: allow", "      id: builtin:x"),
        "id 'builtin:x' is reserved",
        4,
    ),
    ("reserved-id-default", rules("    - {id: default, decision: allow}"), "is reserved", 3),
    ("id-with-space", rules("    - {id: 'a b', decision: allow}"), "id must be 1-128", 3),
    ("id-not-text", rules("    - {id: 7, decision: allow}"), "id must be 1-128", 3),
    ("reason-empty", rules("    - {decision: allow, reason: ''}"), "reason must be", 3),
    # -- approvals
    (
        "approvers-on-allow",
        rules("    - decision: allow", "      approvers: [role:x]"),
        "rule *:*: approvers only applies to review rules",
        4,
    ),
    (
        "approvers-on-block",
        rules("    - {decision: block, approvers: [principal:ana]}"),
        "approvers only applies to review rules",
        3,
    ),
    (
        "approver-format",
        rules("    - decision: review", "      approvers: [alice]"),
        "approver 'alice' must be role:<name> or principal:<name>",
        4,
    ),
    (
        "approval-expiry-on-block",
        rules("    - decision: block", "      approval_expiry: 1h"),
        "approval_expiry only applies to review rules",
        4,
    ),
    # -- credentials
    (
        "credential-on-block",
        rules("    - decision: block", f"      {CRED}}}"),
        "a block rule cannot carry a credential",
        4,
    ),
    (
        "credential-unknown-type",
        rules("    - decision: allow", "      credential: {type: aws_sts, permissions: {a: read}}"),
        "credential type 'aws_sts' is not one of github_app_jwt, static",
        4,
    ),
    (
        "credential-not-a-mapping",
        rules("    - decision: allow", "      credential: github"),
        "credential must be a mapping with type and permissions",
        4,
    ),
    (
        "credential-ttl-above-600",
        rules("    - decision: allow", f"      {CRED}, ttl: 11m}}"),
        "a github_app_jwt lives at most 600 seconds, not 660",
        4,
    ),
    (
        "credential-ttl-601",
        rules(
            "    - decision: review",
            "      credential:",
            "        type: github_app_jwt",
            "        permissions: {contents: read}",
            "        ttl: 601",
        ),
        "at most 600 seconds, not 601",
        7,
    ),
    (
        "permission-level-invalid",
        rules(
            "    - decision: allow",
            "      credential:",
            "        type: github_app_jwt",
            "        permissions: {contents: superuser}",
        ),
        "permission contents: level must be read, write or admin, got 'superuser'",
        6,
    ),
    (
        "permission-string-without-level",
        rules(
            "    - decision: allow",
            "      credential: {type: github_app_jwt, permissions: 'a:read,b'}",
        ),
        "permission b: level must be read, write or admin, got None",
        4,
    ),
    (
        "permission-name-invalid",
        rules(
            "    - decision: allow",
            "      credential: {type: github_app_jwt, permissions: {Contents: read}}",
        ),
        "permission name 'Contents' is not valid",
        4,
    ),
    (
        "permissions-a-list",
        rules(
            "    - decision: allow",
            "      credential: {type: github_app_jwt, permissions: [contents]}",
        ),
        "permissions must be a mapping like {contents: read}",
        4,
    ),
    (
        "static-without-name",
        rules("    - decision: allow", "      credential: {type: static}"),
        "a static credential needs a name like pypi-upload",
        4,
    ),
    (
        "static-bad-name",
        rules("    - decision: allow", "      credential: {type: static, name: ../etc}"),
        "a static credential needs a name like pypi-upload",
        4,
    ),
    (
        "github-with-name",
        rules("    - decision: allow", f"      {CRED}, name: x}}"),
        "a github_app_jwt credential has no name",
        4,
    ),
    (
        "deliver-unknown",
        rules("    - decision: allow", f"      {CRED}, deliver: agent}}"),
        "deliver must be executor or caller, got 'agent'",
        4,
    ),
    (
        "static-ttl-above-an-hour",
        rules("    - decision: allow", "      credential: {type: static, name: pypi, ttl: 2h}"),
        "a static lives at most 3600 seconds, not 7200",
        4,
    ),
    # -- unreachable rules
    (
        "unreachable-tool-glob",
        rules(
            "    - {protocol: git, tool: 'github.*', decision: allow}",
            "    - {protocol: git, tool: 'github.get_*', decision: block}",
        ),
        "rule git:github.get_*: is unreachable: rule git:github.* on line 3 matches every "
        "action it does",
        4,
    ),
    (
        "unreachable-any-capability",
        rules(
            "    - {id: any, protocol: git, tool: t, capability: '*', decision: allow}",
            "    - {id: read, protocol: git, tool: t, capability: read, decision: block}",
        ),
        "rule read: is unreachable: rule any on line 3",
        4,
    ),
    (
        "unreachable-extra-conditions",
        rules(
            "    - {id: plain, protocol: shell, tool: shell.git, decision: review}",
            "    - id: narrower",
            "      protocol: shell",
            "      tool: shell.git",
            "      when: {flags: [-f]}",
            "      decision: block",
        ),
        "rule narrower: is unreachable: rule plain on line 3",
        4,
    ),
    (
        "unreachable-superset-of-conditions",
        rules(
            "    - {id: a, tool: shell.git, when: {flags: [-f, --force]}, decision: block}",
            "    - {id: b, tool: shell.git, when: {flags: [-f], subcommand: push}, "
            "decision: review}",
        ),
        "rule b: is unreachable: rule a on line 3",
        4,
    ),
    (
        "unreachable-protocol-list",
        rules(
            "    - {id: a, protocol: [shell, file], when: {paths: ['**/.env']}, decision: block}",
            "    - {id: b, protocol: file, when: {paths: ['**/.env']}, decision: allow}",
        ),
        "rule b: is unreachable: rule a on line 3",
        4,
    ),
    (
        "unreachable-after-empty-rule",
        rules(
            "    - {id: all, decision: review}", "    - {id: x, tool: http.get, decision: allow}"
        ),
        "rule x: is unreachable: rule all on line 3",
        4,
    ),
]


@pytest.mark.parametrize(
    ("text", "message", "line"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_error_table(text: str, message: str, line: int) -> None:
    with pytest.raises(PolicyLoadError) as caught:
        load(text)
    error = caught.value
    assert isinstance(error, PolicyError)
    assert str(error).startswith(f"{SOURCE}:{line}:"), str(error)
    assert message in str(error)
    assert error.reference == "policy-invalid"


def test_error_table_size() -> None:
    assert len(ERRORS) >= 35
    assert len({e[0] for e in ERRORS}) == len(ERRORS)


# -- errors without a line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"#" * (MAX_POLICY_BYTES + 1),
            f"policy is {MAX_POLICY_BYTES + 1} bytes; the limit is 1 MiB",
        ),
        (b"name: \xff\xfe\ntool_policies: {}\n", "policy is not UTF-8 text"),
        (b"\xc3\x28", "policy is not UTF-8 text"),
    ],
    ids=["oversize", "latin1-bytes", "truncated-utf8"],
)
def test_whole_file_errors(data: bytes, message: str) -> None:
    with pytest.raises(PolicyLoadError) as caught:
        load(data)
    assert str(caught.value) == f"{SOURCE}: {message}"


def test_exactly_one_mib_is_not_too_large() -> None:
    data = b"#" * MAX_POLICY_BYTES
    with pytest.raises(PolicyLoadError, match="a policy is a mapping"):
        load(data)


def test_yaml_error_line_comes_from_the_yaml_error() -> None:
    text = "name: p\ntool_policies:\n  rules:\n    - {protocol: shell, decision: allow\n"
    with pytest.raises(PolicyLoadError) as caught:
        load(text)
    # libyaml reports the flow mapping as unterminated at the end of the input.
    assert str(caught.value).startswith(f"{SOURCE}:5: not valid YAML")


def test_rule_that_is_not_a_mapping_names_its_line() -> None:
    """BUG: a scalar rule is reported as ``p.yaml: rule #1 ...`` with no line."""
    with pytest.raises(PolicyLoadError) as caught:
        load(rules("    - {decision: allow, tool: a}", "    - allow"))
    assert "rule #2 must be a mapping" in str(caught.value)
    assert str(caught.value).startswith(f"{SOURCE}:4:"), str(caught.value)


@pytest.mark.parametrize(
    "key",
    ["env.A***", "x[!]", "env.[]]x[", "a.b***"],
    ids=["triple-star", "negated-empty-class", "bad-class", "nested-triple-star"],
)
def test_bad_parameter_key_glob_is_a_load_error(key: str) -> None:
    """BUG: parameter keys are compiled as globs only at evaluation time.

    The loader accepts ``parameters: {"env.A***": "*"}``; evaluating any envelope then
    raises GlobError out of Policy.evaluate instead of the loader rejecting the policy.
    """
    text = rules(
        "    - protocol: http",
        "      decision: block",
        "      when:",
        f"        parameters: {{'{key}': '*'}}",
    )
    with pytest.raises(PolicyLoadError, match="glob"):
        load(text)


def test_whitespace_subcommand_is_an_empty_condition() -> None:
    """BUG: ``subcommand: ' '`` compiles to an empty alternative that matches anything."""
    text = rules("    - {id: r, tool: shell.git, when: {subcommand: ' '}, decision: block}")
    with pytest.raises(PolicyLoadError, match="subcommand"):
        load(text)


@pytest.mark.parametrize(
    "text",
    [
        "tool_policies:\n  approval_expiry: " + "1" * 5000 + "\n",
        rules("    - decision: block", "      when: {parameters: {x: " + "9" * 5000 + "}}"),
        rules("    - decision: allow", "      credential: {type: [a], permissions: {c: read}}"),
        rules("    - decision: allow", "      credential: {type: {a: 1}, permissions: {c: read}}"),
        rules(
            "    - decision: allow", "      credential: {type: !!set {a}, permissions: {c: read}}"
        ),
        "name: \udcff\ntool_policies: {}\n",
    ],
    ids=[
        "int-over-4300-digits",
        "parameter-int-over-4300-digits",
        "credential-type-list",
        "credential-type-mapping",
        "credential-type-set",
        "str-with-lone-surrogate",
    ],
)
def test_hostile_input_raises_policy_load_error_only(text: str) -> None:
    """BUG: these escape as ValueError, TypeError or UnicodeEncodeError."""
    with pytest.raises(PolicyLoadError):
        load(text)


# -- things that are NOT unreachable -------------------------------------------------

REACHABLE = [
    (
        "earlier-has-conditions-later-lacks",
        rules(
            "    - {id: a, tool: shell.git, when: {flags: [-f]}, decision: block}",
            "    - {id: b, tool: shell.git, decision: allow}",
        ),
    ),
    (
        "earlier-allow-with-conditions-later-block-same",
        rules(
            "    - {id: a, protocol: shell, when: {paths: ['**/*.md']}, decision: allow}",
            "    - {id: b, protocol: shell, when: {paths: ['**/*.md']}, decision: block}",
        ),
    ),
    (
        "different-targets",
        rules(
            "    - {id: a, tool: file.write, target: '/workspace/**', decision: allow}",
            "    - {id: b, tool: file.write, target: '/tmp/**', decision: review}",
        ),
    ),
    (
        "earlier-target-later-none",
        rules(
            "    - {id: a, tool: file.write, target: '/workspace/**', decision: allow}",
            "    - {id: b, tool: file.write, decision: review}",
        ),
    ),
    (
        "different-tools",
        rules(
            "    - {protocol: git, tool: 'github.get_*', decision: allow}",
            "    - {protocol: git, tool: 'github.list_*', decision: allow}",
        ),
    ),
    (
        "path-star-does-not-cross-slash",
        rules(
            "    - {id: a, tool: file.read, target: '/w/*', decision: allow}",
            "    - {id: b, tool: file.read, target: '/w/*/x', decision: block}",
        ),
    ),
    (
        "earlier-subcommand-differs",
        rules(
            "    - {id: a, tool: shell.gh, when: {subcommand: 'pr view'}, decision: allow}",
            "    - {id: b, tool: shell.gh, when: {subcommand: 'pr merge'}, decision: block}",
        ),
    ),
    (
        "later-adds-flag-alternatives",
        rules(
            "    - {id: a, tool: shell.git, when: {flags: [-f]}, decision: block}",
            "    - {id: b, tool: shell.git, when: {flags: [-f, --force]}, decision: block}",
        ),
    ),
    (
        "earlier-parameter-values-narrower",
        rules(
            "    - {id: a, tool: github.push_files, when: {parameters: {branch: main}}, "
            "decision: block}",
            "    - {id: b, tool: github.push_files, when: {parameters: {branch: [main, dev]}}, "
            "decision: review}",
        ),
    ),
    (
        "allow-args-vs-allow-subcommand-and-args",
        # ``git push main``: a needs every positional (push, main) to be "main" and does
        # not match; b skips the subcommand and matches. b decides, so it is reachable.
        rules(
            "    - {id: a, protocol: shell, tool: shell.git, when: {args: [main]}, "
            "decision: allow}",
            "    - {id: b, protocol: shell, tool: shell.git, when: {subcommand: push, "
            "args: [main]}, decision: allow}",
        ),
    ),
]


@pytest.mark.parametrize("text", [r[1] for r in REACHABLE], ids=[r[0] for r in REACHABLE])
def test_not_unreachable(text: str) -> None:
    policy = load(text)
    assert len(policy.rules) == 2


def test_reachable_subcommand_rule_decides() -> None:
    """BUG: the loader calls rule b unreachable, yet b (alone) decides ``git push main``."""
    text = dict(REACHABLE)["allow-args-vs-allow-subcommand-and-args"]
    policy = load(text)  # fails today: "rule b: is unreachable: rule a on line 3"
    _, decision = decide_line(policy, "git push main")
    assert decision.matched_rule == "b"


# -- positive tests ------------------------------------------------------------------


def test_defaults_when_omitted() -> None:
    policy = load("tool_policies: {}\n")
    assert policy.default_decision == "block"
    assert policy.unparseable == "block"
    assert policy.approval_expiry == DEFAULT_APPROVAL_EXPIRY == 1800
    assert policy.approvers == ()
    assert policy.rules == ()
    assert policy.source == SOURCE
    assert policy.name == "policy"


def test_default_decision_block_applies() -> None:
    policy = load(rules("    - {protocol: http, tool: http.get, decision: allow}"))
    result = decide_action(
        policy, {"protocol": "http", "tool": "http.post", "target": "x", "capability": "write"}
    )
    assert (result.decision, result.matched_rule) == ("block", "default")


@pytest.mark.parametrize(
    "fields",
    [
        "protocol: '*'",
        "tool: '*'",
        "target: '*'",
        "target: '**'",
        "capability: '*'",
        "protocol: '*', tool: '*', target: '*', capability: '*'",
        "protocol: [shell, '*']",
    ],
    ids=["protocol", "tool", "target", "target-globstar", "capability", "all", "in-a-list"],
)
def test_star_equals_omission(fields: str) -> None:
    rule_id = "id: r, " if "[" in fields else ""
    starred = load(rules(f"    - {{{rule_id}{fields}, decision: allow}}")).rules[0]
    plain = load(rules(f"    - {{{rule_id}decision: allow}}")).rules[0]
    for name in ("protocol", "tool", "target", "capability"):
        assert getattr(starred, name) is EMPTY_SET
        assert getattr(plain, name) is EMPTY_SET


@pytest.mark.parametrize(
    ("rule", "name"),
    [
        ("{protocol: shell, tool: shell.rm, decision: block}", "shell:shell.rm"),
        ("{protocol: shell, tool: 'shell.py*', decision: block}", "shell:shell.py*"),
        ("{tool: http.get, decision: allow}", "*:http.get"),
        ("{protocol: git, decision: allow}", "git:*"),
        ("{decision: allow}", "*:*"),
        ("{protocol: '*', tool: 'x', decision: allow}", "*:x"),
        ("{id: my-rule, protocol: shell, tool: shell.rm, decision: block}", "my-rule"),
        ("{id: 'ns:rule/1', tool: [a, b], decision: block}", "ns:rule/1"),
    ],
    ids=["both", "glob-as-written", "tool-only", "protocol-only", "neither", "star", "id", "id-ns"],
)
def test_matched_rule_naming(rule: str, name: str) -> None:
    policy = load(rules(f"    - {rule}"))
    assert policy.rules[0].name == name
    assert policy.rules[0].line == 3


def test_matched_rule_comes_from_the_rule_name() -> None:
    policy = load(
        rules(
            "    - {protocol: http, tool: 'http.g*', decision: allow}",
            "    - {id: posts, protocol: http, tool: http.post, decision: review}",
        )
    )
    get = {"protocol": "http", "tool": "http.get", "target": "x", "capability": "read"}
    post = {"protocol": "http", "tool": "http.post", "target": "x", "capability": "write"}
    assert decide_action(policy, get).matched_rule == "http:http.g*"
    assert decide_action(policy, post).matched_rule == "posts"
    assert decide_action(policy, post).rule_line == 4


@pytest.mark.parametrize(
    ("permissions", "scope"),
    [
        ("{pull_requests: write, contents: read}", "pull_requests:write,contents:read"),
        ("{contents: read, pull_requests: write}", "contents:read,pull_requests:write"),
        ("'a:read,b:write'", "a:read,b:write"),
        ("'b:admin, a:read'", "b:admin,a:read"),
        ("{issues: admin}", "issues:admin"),
    ],
    ids=["yaml-order", "yaml-order-reversed", "string", "string-spaces", "single"],
)
def test_credential_scope_keeps_order(permissions: str, scope: str) -> None:
    policy = load(
        rules(
            "    - decision: review",
            "      credential:",
            "        type: github_app_jwt",
            f"        permissions: {permissions}",
        )
    )
    credential = policy.rules[0].credential
    assert credential is not None
    assert credential.scope == scope
    assert credential.ttl == 600  # the type's limit when ttl is omitted
    assert credential.to_dict() == {"type": "github_app_jwt", "scope": scope, "ttl": 600}


def test_permissions_string_pairs() -> None:
    policy = load(
        rules(
            "    - decision: allow",
            "      credential: {type: github_app_jwt, permissions: 'a:read,b:write'}",
        )
    )
    credential = policy.rules[0].credential
    assert credential is not None
    assert credential.permissions == (("a", "read"), ("b", "write"))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("600", 600), ("10m", 600), ("1h", 3600), ("2d", 172800), ("7d", 604800), ("90s", 90)],
    ids=["int", "minutes", "hour", "days", "max", "seconds"],
)
def test_durations(value: str, seconds: int) -> None:
    policy = load(f"tool_policies:\n  approval_expiry: {value}\n")
    assert policy.approval_expiry == seconds


def test_credential_ttl_units() -> None:
    policy = load(rules("    - decision: allow", f"      {CRED}, ttl: 5m}}"))
    assert policy.rules[0].credential is not None
    assert policy.rules[0].credential.ttl == 300


def test_content_hash_is_sha256_of_the_exact_bytes() -> None:
    policy = load(PR_WRITER)
    assert policy.content_hash == "sha256:" + hashlib.sha256(PR_WRITER).hexdigest()
    assert load(PR_WRITER.decode()).content_hash == policy.content_hash
    edited = PR_WRITER.replace(b"name: pr-writer\n", b"name: pr-writer \n", 1)
    assert edited != PR_WRITER
    assert load(edited).content_hash == "sha256:" + hashlib.sha256(edited).hexdigest()
    assert load(edited).content_hash != policy.content_hash
    assert load(PR_WRITER + b"\n").content_hash != policy.content_hash


@pytest.mark.parametrize(
    ("text", "fallback", "name"),
    [
        ("name: from-yaml\ntool_policies: {}\n", "file-stem", "from-yaml"),
        ("tool_policies: {}\n", "file-stem", "file-stem"),
        ("tool_policies: {}\n", None, "policy"),
        ("name: a.b_c-1\ntool_policies: {}\n", None, "a.b_c-1"),
    ],
    ids=["name-key", "fallback", "no-fallback", "punctuation"],
)
def test_policy_name(text: str, fallback: str | None, name: str) -> None:
    assert load(text, name=fallback).name == name


def test_pr_writer_loads() -> None:
    policy = load(PR_WRITER, name="ignored")
    assert policy.name == "pr-writer"
    assert policy.default_decision == "review"
    assert policy.unparseable == "review"
    assert policy.approval_expiry == 1800
    assert policy.approvers == ("role:reviewer", "role:admin")
    assert len(policy.rules) > 200
    assert [r.index for r in policy.rules] == list(range(len(policy.rules)))
    assert len({r.name for r in policy.rules}) == len(policy.rules)


def test_rule_fields_compile() -> None:
    policy = load(
        rules(
            "    - id: r",
            "      description: d",
            "      protocol: shell",
            "      tool: shell.git",
            "      decision: review",
            "      reason: '  spaced  '",
            "      suggested_alternative: ask",
            "      approvers: [role:a, principal:b@example.org]",
            "      approval_expiry: 10m",
            "      when:",
            "        subcommand: ['pr merge', push]",
            "        flags: [-f]",
            "        global_flags: -c",
            "        args: main",
            "        parameters: {n: 1, ok: true, none: null, name: 'x*'}",
        )
    )
    rule = policy.rules[0]
    assert rule.reason == "spaced"
    assert rule.suggested_alternative == "ask"
    assert rule.approvers == ("role:a", "principal:b@example.org")
    assert rule.approval_expiry == 600
    assert rule.when is not None
    assert rule.when.subcommand is not None
    assert len(rule.when.subcommand) == 2
    assert rule.when.source["subcommand"] == ["pr merge", "push"]
    assert rule.when.flags == ("-f",)
    assert rule.when.global_flags == ("-c",)
    assert [t.key for t in rule.when.parameters] == ["n", "ok", "none", "name"]
    assert rule.when.source["parameters"] == {"n": 1, "ok": True, "none": None, "name": "x*"}


@pytest.mark.parametrize(
    ("decision", "reason"),
    [
        ("allow", "allowed by policy"),
        ("review", "requires human review"),
        ("block", "blocked by policy"),
    ],
)
def test_default_reasons(decision: str, reason: str) -> None:
    assert load(rules(f"    - {{decision: {decision}}}")).rules[0].reason == reason


def test_yaml_aliases_and_merge_keys_are_followed() -> None:
    text = rules(
        "    - protocol: git",
        "      tool: a",
        "      decision: allow",
        "      credential: &cred {type: github_app_jwt, permissions: {contents: read}}",
        "    - {protocol: git, tool: b, decision: review, credential: *cred}",
        "    - {protocol: git, tool: c, decision: allow, credential: {<<: *cred, ttl: 5m}}",
    )
    policy = load(text)
    assert [r.name for r in policy.rules] == ["git:a", "git:b", "git:c"]
    credentials = [r.credential for r in policy.rules]
    assert [c.scope for c in credentials if c] == ["contents:read"] * 3
    assert [c.ttl for c in credentials if c] == [600, 600, 300]


# -- every error is a PolicyLoadError ---------------------------------------------------

YAMLISH = st.text(
    alphabet=st.sampled_from(list("abdeloprstuwy_*-:[]{},'\"&!|>#? \n\t0123456789.")), max_size=120
)

_KEYS = [
    "name", "description", "tool_policies", "enabled", "default_decision", "rules",
    "approval_expiry", "approvers", "unparseable", "id", "protocol", "tool", "target",
    "capability", "decision", "reason", "when", "credential", "subcommand", "flags",
    "global_flags", "args", "paths", "parameters", "type", "permissions", "ttl", "env.GIT_*",
]  # fmt: skip
_WORDS = [
    "allow", "review", "block", "shell", "git", "read", "*", "**", "-f", "x*", "role:a",
    "github_app_jwt", "10m", "8d", "a:read", "[", "a/**b", "", " ",
]  # fmt: skip
_SCALARS = st.one_of(
    st.sampled_from(_WORDS), st.integers(-2, 700), st.booleans(), st.none(), st.text(max_size=8)
)
TREES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_KEYS), children, max_size=5)
    ),
    max_leaves=25,
)
_RULES = st.fixed_dictionaries(
    {"decision": st.sampled_from(["allow", "review", "block"])},
    optional={
        "id": st.sampled_from(["a", "b"]),
        "protocol": TREES,
        "tool": TREES,
        "target": TREES,
        "capability": TREES,
        "when": st.dictionaries(
            st.sampled_from(["subcommand", "flags", "global_flags", "args", "paths", "parameters"]),
            TREES,
            max_size=3,
        ),
        "credential": st.dictionaries(
            st.sampled_from(["type", "permissions", "ttl"]), TREES, max_size=3
        ),
        "approvers": TREES,
        "approval_expiry": TREES,
    },
)
DOCUMENTS = TREES | st.fixed_dictionaries(
    {"tool_policies": st.fixed_dictionaries({"rules": st.lists(_RULES, max_size=3)})}
)


def _loads_or_policy_error(data: str | bytes) -> None:
    with contextlib.suppress(PolicyLoadError):
        load(data)


@settings(deadline=None, max_examples=300)
@given(YAMLISH)
def test_yamlish_text_only_raises_policy_load_error(text: str) -> None:
    _loads_or_policy_error(text)


@settings(deadline=None, max_examples=300)
@given(DOCUMENTS)
@example({"tool_policies": {"rules": [{"decision": "allow", "credential": {"type": ["a"]}}]}})
def test_generated_documents_only_raise_policy_load_error(tree: object) -> None:
    _loads_or_policy_error(yaml.safe_dump(tree))


@settings(deadline=None, max_examples=100)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["delete", "insert", "replace"]),
            st.integers(0, len(PR_WRITER) - 1),
            st.binary(min_size=1, max_size=4),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_pr_writer_only_raises_policy_load_error(
    edits: list[tuple[str, int, bytes]],
) -> None:
    data = bytearray(PR_WRITER)
    for op, offset, chunk in edits:
        at = min(offset, len(data))
        if op == "delete":
            del data[at : at + len(chunk)]
        elif op == "insert":
            data[at:at] = chunk
        else:
            data[at : at + len(chunk)] = chunk
    _loads_or_policy_error(bytes(data))


def test_mutated_pr_writer_line_swaps() -> None:
    """Deterministic structural mutations: swapped, dropped and duplicated lines."""
    lines = PR_WRITER.splitlines(keepends=True)
    rng = random.Random(20260406)
    for _ in range(150):
        mutated = list(lines)
        i, j = rng.randrange(len(mutated)), rng.randrange(len(mutated))
        choice = rng.randrange(3)
        if choice == 0:
            mutated[i], mutated[j] = mutated[j], mutated[i]
        elif choice == 1:
            del mutated[i]
        else:
            mutated.insert(j, mutated[i])
        _loads_or_policy_error(b"".join(mutated))


def test_static_credentials_delivered_to_the_caller() -> None:
    policy = load(
        rules(
            "    - decision: allow",
            "      credential: {type: static, name: pypi-upload, deliver: caller, ttl: 5m}",
        )
    )
    credential = policy.rules[0].credential
    assert credential is not None
    assert (credential.type, credential.name, credential.deliver, credential.ttl) == (
        "static", "pypi-upload", "caller", 300,
    )  # fmt: skip
    assert credential.scope == "static:pypi-upload"
    assert credential.to_dict() == {
        "type": "static", "scope": "static:pypi-upload", "ttl": 300, "deliver": "caller",
    }  # fmt: skip
