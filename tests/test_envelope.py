"""Envelopes: validation, round trips, and the action digest approvals bind to."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from aegisflow.canonical import MAX_SAFE_INT
from aegisflow.envelope import (
    CAPABILITIES,
    DIGEST_DOMAIN,
    MAX_TARGET,
    MAX_TEXT,
    MAX_TOOL,
    PROTOCOLS,
    Actor,
    Envelope,
    InvalidAction,
    check_tool,
    envelope_from_action,
)
from aegisflow.errors import InputError

ID = "00000000-0000-4000-8000-000000000001"
ID2 = "3f2b8c1e-9d4a-4b6f-a0c2-7e5d1f9b8a64"
ACTOR = Actor(agent="claude-code", session="sess-1", principal="ci-bot")


def make(**changes: Any) -> Envelope:
    fields: dict[str, Any] = {
        "envelope_id": ID,
        "actor": ACTOR,
        "protocol": "git",
        "tool": "github.get_file_contents",
        "target": "aegisflow/aegisflow",
        "capability": "read",
        "parameters": {"path": "README.md", "ref": "main"},
    }
    fields.update(changes)
    return Envelope(**fields)


DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]

# -- validation ------------------------------------------------------------------------------

BAD_ENVELOPES: list[tuple[str, dict[str, Any], str]] = [
    ("id-not-uuid", {"envelope_id": "not-a-uuid"}, "lower-case UUIDv4"),
    ("id-upper-case", {"envelope_id": ID2.upper()}, "lower-case UUIDv4"),
    ("id-uuid1", {"envelope_id": "3f2b8c1e-9d4a-1b6f-a0c2-7e5d1f9b8a64"}, "UUIDv4"),
    ("id-bad-variant", {"envelope_id": "3f2b8c1e-9d4a-4b6f-70c2-7e5d1f9b8a64"}, "UUIDv4"),
    ("id-braces", {"envelope_id": "{" + ID2 + "}"}, "UUIDv4"),
    ("id-trailing-newline", {"envelope_id": ID2 + "\n"}, "UUIDv4"),
    ("protocol-unknown", {"protocol": "ftp"}, "protocol 'ftp' is not one of"),
    ("protocol-case", {"protocol": "Git"}, "protocol 'Git'"),
    ("capability-unknown", {"capability": "destroy"}, "capability 'destroy' is not one of"),
    ("capability-empty", {"capability": ""}, "capability ''"),
    ("tool-empty", {"tool": ""}, "tool must be a non-empty string"),
    ("tool-not-text", {"tool": 5}, "tool must be a non-empty string"),
    ("tool-space", {"tool": "github get"}, "spaces or control characters"),
    ("tool-tab", {"tool": "a\tb"}, "spaces or control characters"),
    ("tool-newline", {"tool": "a\nb"}, "spaces or control characters"),
    ("tool-nul", {"tool": "a\x00b"}, "spaces or control characters"),
    ("tool-escape", {"tool": "a\x1b[31m"}, "spaces or control characters"),
    ("tool-nbsp", {"tool": "a\u00a0b"}, "spaces or control characters"),
    ("tool-line-separator", {"tool": "a\u2028b"}, "spaces or control characters"),
    ("tool-zero-width", {"tool": "a\u200bb"}, "spaces or control characters"),
    ("tool-homoglyph", {"tool": "shell.\u0433m"}, "is not ASCII"),
    ("tool-accent", {"tool": "shell.\u00e9"}, "is not ASCII"),
    ("tool-too-long", {"tool": "t" * (MAX_TOOL + 1)}, f"the limit is {MAX_TOOL}"),
    ("target-newline", {"target": "a\nb"}, "target contains NUL or line breaks"),
    ("target-cr", {"target": "a\rb"}, "target contains NUL or line breaks"),
    ("target-nul", {"target": "a\x00"}, "target contains NUL"),
    ("target-too-long", {"target": "t" * (MAX_TARGET + 1)}, f"the limit is {MAX_TARGET}"),
    ("target-not-text", {"target": None}, "target must be a string"),
    ("justification-nul", {"justification": "a\x00"}, "justification contains NUL"),
    ("justification-long", {"justification": "j" * (MAX_TEXT + 1)}, "justification is"),
    ("task-nul", {"task": "\x00"}, "task contains NUL"),
    ("approval-ref-not-uuid", {"approval_ref": "yes"}, "approval_ref must be the envelope id"),
    ("approval-ref-upper", {"approval_ref": ID2.upper()}, "approval_ref"),
    ("parameters-list", {"parameters": [1, 2]}, "parameters must be an object"),
    ("parameters-float", {"parameters": {"x": 1.5}}, "floats are not allowed"),
    ("parameters-nested-float", {"parameters": {"a": [{"b": 0.0}]}}, "parameters.a[0].b"),
    ("parameters-nan", {"parameters": {"x": float("nan")}}, "floats"),
    ("parameters-set", {"parameters": {"x": {1, 2}}}, "set is not a JSON value"),
    ("parameters-bytes", {"parameters": {"x": b"raw"}}, "bytes is not a JSON value"),
    ("parameters-huge-int", {"parameters": {"x": 2**53}}, "outside the I-JSON range"),
    ("parameters-huge-negative", {"parameters": {"x": -(2**53)}}, "outside the I-JSON range"),
    ("parameters-int-key", {"parameters": {1: "x"}}, "is not a string"),
    ("parameters-surrogate", {"parameters": {"x": "\udc80"}}, "lone surrogate"),
    ("parameters-too-deep", {"parameters": {"x": DEEP}}, "deeper than"),
]


@pytest.mark.parametrize(
    ("changes", "message"),
    [b[1:] for b in BAD_ENVELOPES],
    ids=[b[0] for b in BAD_ENVELOPES],
)
def test_invalid_envelopes(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidAction) as caught:
        make(**changes)
    assert message in str(caught.value)
    assert isinstance(caught.value, InputError)
    assert caught.value.reference == "invalid-action"


@pytest.mark.parametrize(
    "changes",
    [
        {"tool": "t" * MAX_TOOL},
        {"tool": "shell.[["},
        {"tool": "github.get_file_contents"},
        {"target": ""},
        {"target": "t" * MAX_TARGET},
        {"target": "path with spaces\tand tab"},
        {"justification": "two\nlines\r\nare fine"},
        {"task": "multi\nline"},
        {"approval_ref": ID2},
        {"parameters": {}},
        {"parameters": {"x": MAX_SAFE_INT, "y": -MAX_SAFE_INT, "z": [None, True, "s"]}},
        {"parameters": {"t": (1, 2)}},
    ],
    ids=[
        "tool-at-limit",
        "tool-brackets",
        "tool-plain",
        "target-empty",
        "target-at-limit",
        "target-spaces",
        "justification-multiline",
        "task-multiline",
        "approval-ref",
        "no-parameters",
        "edge-ints",
        "tuple-as-list",
    ],
)
def test_valid_envelopes(changes: dict[str, Any]) -> None:
    envelope = make(**changes)
    assert len(envelope.action_digest) == 64


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("capability", CAPABILITIES)
def test_every_protocol_and_capability(protocol: str, capability: str) -> None:
    assert make(protocol=protocol, capability=capability).protocol == protocol


BAD_ACTORS: list[tuple[str, dict[str, Any], str]] = [
    ("session-traversal", {"session": "../x"}, "actor.session"),
    ("session-slash", {"session": "a/b"}, "actor.session"),
    ("session-space", {"session": "a b"}, "actor.session"),
    ("session-empty", {"session": ""}, "actor.session: session id is empty"),
    ("session-dotdot-inside", {"session": "a..b"}, "contains '..'"),
    ("session-leading-dot", {"session": ".hidden"}, "actor.session"),
    ("session-lock", {"session": "s.lock"}, "'.lock'"),
    ("session-trailing-dot", {"session": "s."}, "actor.session"),
    ("session-too-long", {"session": "s" * 129}, "the limit is 128"),
    ("session-unicode", {"session": "sess\u2011one"}, "actor.session"),
    ("session-newline", {"session": "s\n"}, "actor.session"),
    ("session-not-text", {"session": 7}, "actor.session"),
    ("agent-empty", {"agent": ""}, "actor.agent must be"),
    ("agent-space", {"agent": "claude code"}, "actor.agent must be"),
    ("agent-too-long", {"agent": "a" * 129}, "actor.agent must be"),
    ("agent-leading-dash", {"agent": "-x"}, "actor.agent must be"),
    ("principal-space", {"principal": "a b"}, "actor.principal must be"),
    ("principal-newline", {"principal": "ana\n"}, "actor.principal must be"),
]


@pytest.mark.parametrize(
    ("changes", "message"), [b[1:] for b in BAD_ACTORS], ids=[b[0] for b in BAD_ACTORS]
)
def test_invalid_actors(changes: dict[str, Any], message: str) -> None:
    fields = {"agent": "claude-code", "session": "sess-1", **changes}
    with pytest.raises(InvalidAction) as caught:
        Actor(**fields)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"agent": "a", "session": "s"},
        {"agent": "claude-code/1.2+b", "session": "S_1-x.y", "principal": "ana@example.org"},
        {"agent": "a" * 128, "session": "s" * 128, "principal": "p:q"},
    ],
    ids=["minimal", "punctuation", "at-limits"],
)
def test_valid_actors(fields: dict[str, str]) -> None:
    actor = Actor(**fields)
    assert Actor.from_dict(actor.to_dict()) == actor


def test_check_tool_returns_the_tool() -> None:
    assert check_tool("shell.ls") == "shell.ls"
    with pytest.raises(InvalidAction):
        check_tool(None)


# -- round trips and unknown fields ------------------------------------------------------------


ROUND_TRIP = [
    make(),
    make(
        justification="read the README",
        task="T-1",
        approval_ref=ID2,
        parameters={"nested": {"list": [1, None, True, "x"]}, "é": "\U0001f600"},
    ),
    make(actor=Actor(agent="a", session="s"), target="", parameters={}),
]


@pytest.mark.parametrize("envelope", ROUND_TRIP, ids=["plain", "everything", "minimal"])
def test_round_trip(envelope: Envelope) -> None:
    data = envelope.to_dict()
    again = Envelope.from_dict(data)
    assert again == envelope
    assert again.action_digest == envelope.action_digest
    assert again.to_dict() == data


def test_to_dict_omits_empty_optional_fields() -> None:
    data = make(actor=Actor(agent="a", session="s")).to_dict()
    assert set(data) == {
        "envelope_id", "actor", "protocol", "tool", "target", "capability", "parameters",
    }  # fmt: skip
    assert data["actor"] == {"agent": "a", "session": "s"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), "envelope has unknown fields: extra"),
        (lambda d: d.update(action_digest="x", zz=1), "unknown fields: action_digest, zz"),
        (lambda d: d["actor"].update(role="admin"), "actor has unknown fields: role"),
        (lambda d: d.pop("actor"), "actor must be an object"),
        (lambda d: d.update(actor="claude"), "actor must be an object"),
        (lambda d: d.pop("tool"), "tool is required"),
        (lambda d: d.pop("envelope_id"), "envelope_id is required"),
        (lambda d: d.update(tool=None), "tool is required"),
        (lambda d: d.update(capability=3), "capability must be a string, got int"),
        (lambda d: d.update(parameters=[1]), "parameters must be an object"),
        (lambda d: d.update(approval_ref=5), "approval_ref must be a string"),
        (lambda d: d["actor"].pop("session"), "actor.session is required"),
    ],
    ids=[
        "unknown-field",
        "unknown-fields-sorted",
        "unknown-actor-field",
        "no-actor",
        "actor-not-object",
        "no-tool",
        "no-id",
        "null-tool",
        "capability-int",
        "parameters-list",
        "approval-ref-int",
        "no-session",
    ],
)
def test_from_dict_rejects(mutate: Any, message: str) -> None:
    data = make().to_dict()
    mutate(data)
    with pytest.raises(InvalidAction) as caught:
        Envelope.from_dict(data)
    assert message in str(caught.value)


@pytest.mark.parametrize("data", [None, [], "x", 5], ids=["none", "list", "str", "int"])
def test_from_dict_needs_an_object(data: object) -> None:
    with pytest.raises(InvalidAction, match="must be a JSON object"):
        Envelope.from_dict(data)


def test_from_dict_target_defaults_to_empty() -> None:
    data = make().to_dict()
    del data["target"]
    assert Envelope.from_dict(data).target == ""


def test_envelope_from_action() -> None:
    ids = iter([ID, ID2])
    data = {
        "protocol": "git",
        "tool": "github.get_file_contents",
        "target": "aegisflow/aegisflow",
        "capability": "read",
        "parameters": {"path": "README.md", "ref": "main"},
    }
    envelope = envelope_from_action(data, actor=ACTOR, new_id=lambda: next(ids))
    assert envelope == make()
    with pytest.raises(InvalidAction, match="unknown action fields: envelope_id") as caught:
        envelope_from_action({**data, "envelope_id": ID}, actor=ACTOR)
    assert caught.value.hint is not None
    assert "approval_ref" in caught.value.hint


# -- the action digest -------------------------------------------------------------------------

SAME_ACTION = [
    ("envelope-id", {"envelope_id": ID2}),
    ("justification", {"justification": "because"}),
    ("task", {"task": "T-42"}),
    ("approval-ref", {"approval_ref": ID2}),
    ("principal", {"actor": Actor(agent="claude-code", session="sess-1", principal="other")}),
    ("no-principal", {"actor": Actor(agent="claude-code", session="sess-1")}),
    ("agent", {"actor": Actor(agent="cursor", session="sess-1", principal="ci-bot")}),
    ("parameter-order", {"parameters": {"ref": "main", "path": "README.md"}}),
]

OTHER_ACTION = [
    ("session", {"actor": Actor(agent="claude-code", session="sess-2", principal="ci-bot")}),
    ("protocol", {"protocol": "mcp"}),
    ("tool", {"tool": "github.get_file_content"}),
    ("target", {"target": "aegisflow/other"}),
    ("target-empty", {"target": ""}),
    ("capability", {"capability": "write"}),
    ("parameter-value", {"parameters": {"path": "README.md", "ref": "dev"}}),
    ("parameter-type", {"parameters": {"path": "README.md", "ref": ["main"]}}),
    ("parameter-added", {"parameters": {"path": "README.md", "ref": "main", "x": None}}),
    ("parameter-removed", {"parameters": {"path": "README.md"}}),
    ("parameter-key", {"parameters": {"path": "README.md", "Ref": "main"}}),
    ("int-vs-string", {"parameters": {"path": "README.md", "ref": 1}}),
    ("bool-vs-int", {"parameters": {"path": True, "ref": "main"}}),
]


@pytest.mark.parametrize("changes", [c[1] for c in SAME_ACTION], ids=[c[0] for c in SAME_ACTION])
def test_digest_ignores_who_why_and_ids(changes: dict[str, Any]) -> None:
    assert make(**changes).action_digest == make().action_digest


@pytest.mark.parametrize("changes", [c[1] for c in OTHER_ACTION], ids=[c[0] for c in OTHER_ACTION])
def test_digest_covers_the_action(changes: dict[str, Any]) -> None:
    assert make(**changes).action_digest != make().action_digest


def test_digests_of_distinct_actions_are_distinct() -> None:
    digests = {make(**c).action_digest for _, c in OTHER_ACTION}
    assert len(digests) == len(OTHER_ACTION)


def test_action_fields() -> None:
    assert make().action() == {
        "protocol": "git",
        "tool": "github.get_file_contents",
        "target": "aegisflow/aegisflow",
        "capability": "read",
        "parameters": {"path": "README.md", "ref": "main"},
        "session": "sess-1",
    }


def _independent_digest(envelope: Envelope) -> str:
    action = {
        "protocol": envelope.protocol,
        "tool": envelope.tool,
        "target": envelope.target,
        "capability": envelope.capability,
        "parameters": dict(envelope.parameters),
        "session": envelope.actor.session,
    }
    return hashlib.sha256(b"aegisflow/action-digest/v1\x00" + rfc8785.dumps(action)).hexdigest()


GOLDEN = make(
    envelope_id=ID2,
    justification="golden vector",
    parameters={
        "path": "src/a b.py",
        "ref": "main",
        "n": -7,
        "flags": [True, False, None],
        "nested": {"z": 1, "a": "é", "\U0001f600": "outside the BMP", "\uff61": "halfwidth"},
    },
)
# RFC 8785 sorts keys by UTF-16 code unit: U+1F600 (D83D DE00) before U+FF61.
GOLDEN_JSON = (
    '{"capability":"read","parameters":{"flags":[true,false,null],"n":-7,'
    '"nested":{"a":"\u00e9","z":1,"\U0001f600":"outside the BMP","\uff61":"halfwidth"},'
    '"path":"src/a b.py","ref":"main"},"protocol":"git","session":"sess-1",'
    '"target":"aegisflow/aegisflow","tool":"github.get_file_contents"}'
).encode()
GOLDEN_DIGEST = "a0482491d248168cb0c7bf4a8ed6530145aca1f18c67f35746dcd3e1067dcfea"


def test_golden_digest() -> None:
    assert DIGEST_DOMAIN == b"aegisflow/action-digest/v1\x00"
    assert bytes(rfc8785.dumps(GOLDEN.action())) == GOLDEN_JSON
    assert hashlib.sha256(DIGEST_DOMAIN + GOLDEN_JSON).hexdigest() == GOLDEN_DIGEST
    assert _independent_digest(GOLDEN) == GOLDEN_DIGEST
    assert GOLDEN.action_digest == GOLDEN_DIGEST


_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=6)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT) | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=12,
)


@settings(deadline=None, max_examples=300)
@given(st.dictionaries(_TEXT, _VALUES, max_size=5), st.randoms(use_true_random=False))
def test_digest_definition_and_key_order(parameters: dict[str, Any], rnd: Any) -> None:
    envelope = make(parameters=parameters)
    assert envelope.action_digest == _independent_digest(envelope)
    items = list(parameters.items())
    rnd.shuffle(items)
    assert make(parameters=dict(items)).action_digest == envelope.action_digest


def test_envelopes_are_frozen() -> None:
    envelope = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        envelope.tool = "x"  # type: ignore[misc]
