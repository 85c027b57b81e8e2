"""Action envelopes: one tool call, described the same way whichever door it came in by.

Pure: no I/O. Envelope ids come from a caller-supplied factory (UUIDv4 by default);
nothing here reads a clock, a file or the network.

An envelope names *who* (``actor``), *what* (``protocol``, ``tool``, ``target``,
``capability``, ``parameters``) and *why* (``justification``, ``task``), plus the
approval it claims (``approval_ref``). The **action digest** covers only what the action
does (protocol, tool, target, capability, canonical parameters and the session), never
ids, reasons or timestamps, so the same call made twice in a session has the same
digest. Approvals bind to it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aegisflow.canonical import canonical_bytes, check_signable, sha256_hex
from aegisflow.errors import InputError, InvalidEntry
from aegisflow.ledger.entry import validate_session_id

PROTOCOLS = ("mcp", "git", "shell", "sql", "http", "file")
CAPABILITIES = ("read", "write", "delete", "execute", "deploy", "approve")
DIGEST_DOMAIN = b"aegisflow/action-digest/v1\x00"

MAX_TOOL = 256
MAX_TARGET = 4096
MAX_TEXT = 4096
MAX_NAME = 128

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:/+-]*")
TOOL_PATTERN = re.compile(r"[!-~]+")
_BREAKS = re.compile(r"[\x00\r\n]")

IdFactory = Callable[[], str]


class InvalidAction(InputError):
    """An action could not be turned into an envelope."""

    reference = "invalid-action"


def is_envelope_id(value: object) -> bool:
    """Whether ``value`` has the form of an envelope id (a lower-case UUIDv4)."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def new_envelope_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """Who asks: the agent product, its session, and the principal it acts for."""

    agent: str
    session: str
    principal: str = ""

    def __post_init__(self) -> None:
        _check_name("actor.agent", self.agent)
        try:
            validate_session_id(self.session)
        except InputError as e:
            raise InvalidAction(f"actor.session: {e}") from None
        if self.principal:
            _check_name("actor.principal", self.principal)

    def to_dict(self) -> dict[str, str]:
        out = {"agent": self.agent, "session": self.session}
        if self.principal:
            out["principal"] = self.principal
        return out

    @classmethod
    def from_dict(cls, data: object) -> Actor:
        if not isinstance(data, Mapping):
            raise InvalidAction("actor must be an object with agent and session")
        unknown = set(data) - {"agent", "session", "principal"}
        if unknown:
            raise InvalidAction(f"actor has unknown fields: {', '.join(sorted(unknown))}")
        return cls(
            agent=_text(data, "agent", "actor.agent"),
            session=_text(data, "session", "actor.session"),
            principal=_text(data, "principal", "actor.principal", default=""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One tool call. Invalid envelopes cannot be constructed."""

    envelope_id: str
    actor: Actor
    protocol: str
    tool: str
    target: str
    capability: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    justification: str = ""
    approval_ref: str | None = None
    task: str = ""

    def __post_init__(self) -> None:
        if not _UUID.fullmatch(self.envelope_id):
            raise InvalidAction("envelope_id must be a lower-case UUIDv4")
        if self.protocol not in PROTOCOLS:
            raise InvalidAction(f"protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if self.capability not in CAPABILITIES:
            raise InvalidAction(
                f"capability {self.capability!r} is not one of {', '.join(CAPABILITIES)}"
            )
        check_tool(self.tool)
        _check_text("target", self.target, MAX_TARGET)
        _check_text("justification", self.justification, MAX_TEXT, single_line=False)
        _check_text("task", self.task, MAX_TEXT, single_line=False)
        if self.approval_ref is not None and not _UUID.fullmatch(self.approval_ref):
            raise InvalidAction("approval_ref must be the envelope id of an approved action")
        if not isinstance(self.parameters, Mapping):
            raise InvalidAction("parameters must be an object")
        try:
            check_signable(dict(self.parameters), path="parameters")
        except InvalidEntry as e:
            raise InvalidAction(str(e)) from None
        # A private copy: a caller changing its dict later cannot change the digest.
        object.__setattr__(self, "parameters", _copy_json(self.parameters))

    @property
    def session(self) -> str:
        return self.actor.session

    def action(self) -> dict[str, Any]:
        """What the action does: the digested fields."""
        return {
            "protocol": self.protocol,
            "tool": self.tool,
            "target": self.target,
            "capability": self.capability,
            "parameters": dict(self.parameters),
            "session": self.actor.session,
        }

    @property
    def action_digest(self) -> str:
        """Hex SHA-256 of the domain tag and the canonical (RFC 8785) action."""
        return sha256_hex(DIGEST_DOMAIN + canonical_bytes(self.action()))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "envelope_id": self.envelope_id,
            "actor": self.actor.to_dict(),
            "protocol": self.protocol,
            "tool": self.tool,
            "target": self.target,
            "capability": self.capability,
            "parameters": dict(self.parameters),
        }
        if self.justification:
            out["justification"] = self.justification
        if self.approval_ref is not None:
            out["approval_ref"] = self.approval_ref
        if self.task:
            out["task"] = self.task
        return out

    @classmethod
    def from_dict(cls, data: object) -> Envelope:
        """Rebuild an envelope written by :meth:`to_dict` (for example from the ledger)."""
        if not isinstance(data, Mapping):
            raise InvalidAction("an envelope must be a JSON object")
        unknown = set(data) - _ENVELOPE_FIELDS
        if unknown:
            raise InvalidAction(f"envelope has unknown fields: {', '.join(sorted(unknown))}")
        return _from_fields(
            data,
            envelope_id=_text(data, "envelope_id", "envelope_id"),
            actor=Actor.from_dict(data.get("actor")),
        )


_ENVELOPE_FIELDS = frozenset(Envelope.__dataclass_fields__)
ACTION_FIELDS = frozenset(
    {"protocol", "tool", "target", "capability", "parameters", "justification"}
    | {"approval_ref", "task", "actor"}
)


def envelope_from_action(
    data: object,
    *,
    actor: Actor,
    new_id: IdFactory = new_envelope_id,
) -> Envelope:
    """Normalize the seed's HTTP action JSON into an envelope.

    ``{"protocol": "git", "tool": "github.get_file_contents", "target": "owner/repo",
    "capability": "read"}`` plus optional ``parameters``, ``justification``,
    ``approval_ref`` and ``task``. The actor comes from the authenticated caller, not
    from the body. Shell command lines (``parameters.command``) are expanded by
    :func:`aegisflow.policy.normalize.shell_envelopes` instead.

    Raises:
        InvalidAction: On a missing or malformed field, or an unknown one.
    """
    if not isinstance(data, Mapping):
        raise InvalidAction("the action must be a JSON object")
    unknown = set(data) - ACTION_FIELDS
    if unknown:
        raise InvalidAction(
            f"unknown action fields: {', '.join(sorted(unknown))}",
            hint=f"an action has {', '.join(sorted(ACTION_FIELDS))}",
        )
    return _from_fields(data, envelope_id=new_id(), actor=actor)


def _from_fields(data: Mapping[str, Any], *, envelope_id: str, actor: Actor) -> Envelope:
    return Envelope(
        envelope_id=envelope_id,
        actor=actor,
        protocol=_text(data, "protocol", "protocol"),
        tool=_text(data, "tool", "tool"),
        target=_text(data, "target", "target", default=""),
        capability=_text(data, "capability", "capability"),
        parameters=_parameters(data),
        justification=_text(data, "justification", "justification", default=""),
        approval_ref=_optional_text(data, "approval_ref"),
        task=_text(data, "task", "task", default=""),
    )


def check_tool(tool: object) -> str:
    """Return ``tool`` if it is a plausible tool name: printable ASCII, no spaces, bounded.

    ASCII only, so a look-alike letter cannot make ``shell.rm`` miss the rules for it.
    """
    if not isinstance(tool, str) or not tool:
        raise InvalidAction("tool must be a non-empty string")
    if len(tool) > MAX_TOOL:
        raise InvalidAction(f"tool name is {len(tool)} characters; the limit is {MAX_TOOL}")
    if not TOOL_PATTERN.fullmatch(tool):
        raise InvalidAction(
            f"tool name {tool[:60]!a} has spaces or control characters, or is not ASCII"
        )
    return tool


def _copy_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _check_name(where: str, value: object) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or len(value) > MAX_NAME:
        raise InvalidAction(
            f"{where} must be 1-{MAX_NAME} characters of letters, digits and ._@:/+-"
        )


def _check_text(where: str, value: object, limit: int, *, single_line: bool = True) -> None:
    if not isinstance(value, str):
        raise InvalidAction(f"{where} must be a string")
    if len(value) > limit:
        raise InvalidAction(f"{where} is {len(value)} characters; the limit is {limit}")
    if "\x00" in value or (single_line and _BREAKS.search(value)):
        raise InvalidAction(f"{where} contains NUL or line breaks")


def _text(data: Mapping[str, Any], key: str, where: str, *, default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None:
        raise InvalidAction(f"{where} is required")
    if not isinstance(value, str):
        raise InvalidAction(f"{where} must be a string, got {type(value).__name__}")
    return value


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidAction(f"{key} must be a string")
    return value


def _parameters(data: Mapping[str, Any]) -> dict[str, Any]:
    value = data.get("parameters", {})
    if not isinstance(value, Mapping):
        raise InvalidAction("parameters must be an object")
    return dict(value)
