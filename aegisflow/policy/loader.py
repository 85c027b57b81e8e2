"""Strict loading of YAML policies.

Pure: parses text handed to it; reading the file is the caller's job. YAML is read with
a ``yaml.SafeLoader`` subclass that only adds line numbers and refuses duplicate keys
(plain ``safe_load`` keeps the last of two ``decision:`` keys without a word).

Every mistake is an error naming the file, the line and the rule: unknown keys, invalid
decisions, protocols and capabilities, malformed globs, empty conditions, conflicting
settings, duplicate rule names and rules that an earlier rule makes unreachable. A
policy without ``default_decision`` fails closed (``block``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from aegisflow.canonical import sha256_hex
from aegisflow.envelope import CAPABILITIES, PROTOCOLS
from aegisflow.errors import PolicyError, first_line
from aegisflow.policy.engine import DEFAULT_RULE, Policy
from aegisflow.policy.glob import Dialect, Glob, GlobError, GlobSet, compile_glob, glob_set
from aegisflow.policy.model import (
    DECISIONS,
    Conditions,
    CredentialSpec,
    DecisionName,
    ParameterTest,
    Rule,
    subcommands,
)
from aegisflow.policy.shell import is_glob

MAX_POLICY_BYTES = 1 << 20
MAX_RULES = 10_000
MAX_TEXT = 500
DEFAULT_APPROVAL_EXPIRY = 1800  # 30 minutes
CREDENTIAL_TYPES = {"github_app_jwt": 600, "static": 3600}
"""Credential types and the longest lifetime each may be given, in seconds."""
DELIVERIES = ("executor", "caller")
"""Credential types the broker can mint, with the longest lifetime each may have."""
PERMISSION_LEVELS = ("read", "write", "admin")

_TOP_KEYS = {"name", "description", "tool_policies"}
_POLICY_KEYS = {
    "enabled",
    "default_decision",
    "rules",
    "approval_expiry",
    "approvers",
    "unparseable",
}
_RULE_KEYS = {
    "id",
    "description",
    "protocol",
    "tool",
    "target",
    "capability",
    "decision",
    "reason",
    "suggested_alternative",
    "when",
    "approvers",
    "credential",
    "approval_expiry",
}
_WHEN_KEYS = {"subcommand", "flags", "global_flags", "args", "paths", "parameters"}
_CREDENTIAL_KEYS = {"type", "permissions", "ttl", "name", "deliver"}
_RESERVED_PREFIXES = ("approved:", "builtin:")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/*+-]{0,127}")
_POLICY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_APPROVER = re.compile(r"(role|principal):[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_DURATION = re.compile(r"([0-9]+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> int | None:
    """Seconds of a duration like ``600``, ``10m``, ``1h`` or ``2d``; None if malformed."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    match = _DURATION.fullmatch(str(value))
    return int(match.group(1)) * _UNITS[match.group(2)] if match else None


class PolicyLoadError(PolicyError):
    """A policy file is invalid; the message names file, line and rule."""

    reference = "policy-invalid"


def load_policy(text: str | bytes, *, source: str = "<policy>", name: str | None = None) -> Policy:
    """Parse, validate and compile a policy.

    Args:
        text: The YAML document.
        source: Where it came from (a file name), for error messages.
        name: The name to use when the document has no ``name:`` (a file's stem).

    Raises:
        PolicyLoadError: On anything invalid, with ``source:line``.
    """
    try:
        raw = text.encode() if isinstance(text, str) else text
    except UnicodeEncodeError:
        raise PolicyLoadError(f"{source}: policy text is not valid Unicode") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyLoadError(f"{source}: policy is {len(raw)} bytes; the limit is 1 MiB")
    try:
        document = yaml.load(raw.decode("utf-8"), Loader=_Loader)  # noqa: S506 - safe subclass
    except UnicodeDecodeError:
        raise PolicyLoadError(f"{source}: policy is not UTF-8 text") from None
    except (ValueError, RecursionError) as e:  # e.g. an integer of 5000 digits
        raise PolicyLoadError(f"{source}: cannot read the policy: {first_line(e)}") from None
    except _DuplicateKey as e:
        raise PolicyLoadError(f"{source}:{e.line}: duplicate key {e.key!r}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise PolicyLoadError(f"{where}: not valid YAML: {problem}") from None
    try:
        return _Builder(source).build(document, raw, name)
    except (TypeError, ValueError, RecursionError) as e:
        # A safety net: every shape the builder does not expect is a policy error.
        raise PolicyLoadError(f"{source}: malformed policy: {first_line(e)}") from None


# -- YAML with line numbers -------------------------------------------------------------


class _Located(dict[str, Any]):
    """A mapping that remembers the line it and each of its keys started on."""

    line: int
    key_lines: dict[str, int]


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, line: int) -> None:
        super().__init__(key)
        self.key = key
        self.line = line


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader (libyaml's when built in) with line numbers and no duplicate keys."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Located:
    own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
    loader.flatten_mapping(node)  # merged keys first, then the mapping's own
    out = _Located()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    written_by_self: set[str] = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"keys must be strings, got {key!r}", key_node.start_mark
            )
        if key in written_by_self:
            raise _DuplicateKey(key, line)
        if id(key_node) in own:
            written_by_self.add(key)  # a key of its own overrides a merged one (<<: *base)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


class _LocatedList(list[Any]):
    """A sequence that remembers the line of each item."""

    lines: list[int]


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LocatedList:
    out = _LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    out.lines = [child.start_mark.line + 1 for child in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


# -- building -----------------------------------------------------------------------------


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, line: int, message: str, rule: str | None = None) -> PolicyLoadError:
        where = f"{self.source}:{line}" if line else self.source
        subject = f" rule {rule}:" if rule else ""
        return PolicyLoadError(f"{where}:{subject} {message}")

    def build(self, document: object, raw: bytes, fallback_name: str | None) -> Policy:
        if not isinstance(document, _Located):
            raise self.fail(1, "a policy is a mapping with a 'tool_policies' key")
        self.keys(document, _TOP_KEYS, "the policy")
        name = document.get("name", fallback_name or "policy")
        if not isinstance(name, str) or not _POLICY_NAME.fullmatch(name):
            raise self.fail(
                _line(document, "name"), "name must be 1-64 letters, digits, '.', '_' or '-'"
            )
        self.text(document, "description", None)
        section = document.get("tool_policies")
        if not isinstance(section, _Located):
            raise self.fail(_line(document, "tool_policies"), "'tool_policies' must be a mapping")
        self.keys(section, _POLICY_KEYS, "tool_policies")
        if section.get("enabled", True) is not True:
            raise self.fail(
                _line(section, "enabled"),
                "tool_policies.enabled must be true: AegisFlow never runs without a policy",
            )
        default: DecisionName = self.decision(section, "default_decision", None) or "block"
        expiry = self.duration(section, "approval_expiry", None) or DEFAULT_APPROVAL_EXPIRY
        approvers = self.approvers(section, None)
        unparseable = self.decision(section, "unparseable", None) or "block"
        if unparseable == "allow":
            raise self.fail(
                _line(section, "unparseable"),
                "unparseable must be review or block: a command that cannot be parsed "
                "is never allowed",
            )
        rules_node = section.get("rules", [])
        if not isinstance(rules_node, list):
            raise self.fail(_line(section, "rules"), "rules must be a list")
        if len(rules_node) > MAX_RULES:
            raise self.fail(_line(section, "rules"), f"more than {MAX_RULES} rules")
        rules: list[Rule] = []
        names: dict[str, int] = {}
        earlier = _CoverIndex()
        for index, node in enumerate(rules_node):
            line = rules_node.lines[index] if isinstance(rules_node, _LocatedList) else 0
            rule = self.rule(index, node, line)
            if rule.name in names:
                raise self.fail(
                    rule.line,
                    f"has the same name as the rule on line {names[rule.name]}; "
                    "give one of them an 'id' so matched_rule says which decided",
                    rule.name,
                )
            names[rule.name] = rule.line
            self.reachable(rule, earlier.could_cover(rule))
            earlier.add(rule)
            rules.append(rule)
        return Policy(
            name=name,
            content_hash="sha256:" + sha256_hex(raw),
            default_decision=default,
            approval_expiry=expiry,
            approvers=approvers,
            unparseable=unparseable,
            rules=tuple(rules),
            source=self.source,
        )

    # -- one rule --

    def rule(self, index: int, node: object, item_line: int) -> Rule:
        if not isinstance(node, _Located):
            raise self.fail(item_line, f"rule #{index + 1} must be a mapping, got {node!r:.40}")
        line = node.line
        given = node.get("id")
        label = given if isinstance(given, str) else f"#{index + 1}"
        self.keys(node, _RULE_KEYS, f"rule {label}")
        try:
            protocol = self.globs(node, "protocol", "name", allowed=PROTOCOLS)
            tool = self.globs(node, "tool", "name")
            target = self.globs(node, "target", "path")
            capability = self.globs(node, "capability", "name", allowed=CAPABILITIES)
        except GlobError as e:
            raise self.fail(line, str(e), label) from None
        name = self.rule_name(node, label, line)
        decision = self.decision(node, "decision", name)
        if decision is None:
            raise self.fail(line, "has no decision (allow, review or block)", name)
        when = self.conditions(node, name)
        approvers = self.approvers(node, name)
        credential = self.credential(node, name)
        expiry = self.duration(node, "approval_expiry", name)
        if decision != "review" and (approvers or expiry is not None):
            key = "approvers" if approvers else "approval_expiry"
            raise self.fail(_line(node, key), f"{key} only applies to review rules", name)
        if decision == "block" and credential is not None:
            raise self.fail(
                _line(node, "credential"), "a block rule cannot carry a credential", name
            )
        reason = self.text(node, "reason", name) or _DEFAULT_REASONS[decision]
        return Rule(
            index=index,
            name=name,
            line=line,
            protocol=protocol,
            tool=tool,
            target=target,
            capability=capability,
            decision=decision,
            reason=reason,
            suggested_alternative=self.text(node, "suggested_alternative", name),
            when=when,
            approvers=approvers,
            credential=credential,
            approval_expiry=expiry,
            needs_parameter=_needed_parameter(when),
            needs_subcommand=_needed_subcommand(when),
        )

    def rule_name(self, node: _Located, label: str, line: int) -> str:
        rule_id = node.get("id")
        if rule_id is not None:
            if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
                raise self.fail(
                    _line(node, "id"),
                    "id must be 1-128 letters, digits and . _ : / * + - (no spaces)",
                    label,
                )
            if rule_id.startswith(_RESERVED_PREFIXES) or rule_id == DEFAULT_RULE:
                raise self.fail(
                    _line(node, "id"),
                    f"id {rule_id!r} is reserved (default, approved:..., builtin:...)",
                )
            return rule_id
        protocol, tool = node.get("protocol", "*"), node.get("tool", "*")
        if not isinstance(protocol, str) or not isinstance(tool, str):
            raise self.fail(line, "a rule whose protocol or tool is a list needs an 'id'", label)
        return f"{protocol}:{tool}"

    def globs(
        self,
        node: _Located,
        key: str,
        dialect: Dialect,
        *,
        allowed: tuple[str, ...] | None = None,
    ) -> GlobSet:
        value = node.get(key)
        if value is None:
            return glob_set(())
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(item, str) for item in items):
            raise GlobError(f"{key} must be a string or a non-empty list of strings")
        out = []
        for item in items:
            glob = compile_glob(item, dialect)
            if allowed is not None and glob.literal is not None and item not in allowed:
                raise GlobError(f"{key} {item!r} is not one of {', '.join(allowed)}")
            if allowed is not None and not any(glob.match(a) for a in allowed):
                raise GlobError(f"{key} {item!r} matches none of {', '.join(allowed)}")
            out.append(glob)
        if any(g.is_any for g in out):
            return glob_set(())  # "*" is the same as leaving the field out
        return glob_set(tuple(out))

    def decision(self, node: _Located, key: str, rule: str | None) -> DecisionName | None:
        value = node.get(key)
        if value is None:
            return None
        if value not in DECISIONS:
            hint = ""
            if isinstance(value, bool):
                hint = " (YAML reads unquoted yes/no/on/off as booleans; quote the value)"
            raise self.fail(
                _line(node, key),
                f"{key} must be allow, review or block, got {value!r}{hint}",
                rule,
            )
        return value  # type: ignore[no-any-return]

    def conditions(self, node: _Located, rule: str) -> Conditions | None:
        if "when" not in node:
            return None
        when = node["when"]
        line = _line(node, "when")
        if not isinstance(when, _Located) or not when:
            raise self.fail(line, "when must be a non-empty mapping of conditions", rule)
        self.keys(when, _WHEN_KEYS, f"rule {rule} when")
        built: dict[str, Any] = {}
        try:
            for key in ("subcommand", "args", "paths", "flags", "global_flags"):
                if key not in when:
                    continue
                items = self.strings(when, key, rule)
                if key == "subcommand":
                    if any(not item.split() for item in items):
                        raise self.fail(
                            _line(when, key), "subcommand alternatives must not be blank", rule
                        )
                    alternatives = tuple(
                        tuple(compile_glob(part, "name") for part in item.split()) for item in items
                    )
                    built[key] = subcommands(alternatives)
                elif key in ("flags", "global_flags"):
                    bad = [f for f in items if not f.startswith("-") or f in ("-", "--")]
                    if bad:
                        raise self.fail(
                            _line(when, key), f"flags must start with '-': {bad[0]!r}", rule
                        )
                    built[key] = tuple(items)
                else:
                    if key == "args" and any(i.startswith("-") and i != "-" for i in items):
                        raise self.fail(
                            _line(when, key),
                            "args never see options (words starting with '-'); use flags",
                            rule,
                        )
                    dialect: Dialect = "path" if key == "paths" else "name"
                    built[key] = glob_set(tuple(compile_glob(item, dialect) for item in items))
            if "parameters" in when:
                built["parameters"] = self.parameter_tests(when, rule)
        except GlobError as e:
            raise self.fail(line, str(e), rule) from None
        return Conditions(**built, source=_plain(when))

    def parameter_tests(self, when: _Located, rule: str) -> tuple[ParameterTest, ...]:
        params = when["parameters"]
        line = _line(when, "parameters")
        if not isinstance(params, _Located) or not params:
            raise self.fail(line, "when.parameters must be a non-empty mapping", rule)
        tests = []
        for key, value in params.items():
            segments = key.split(".")
            if not all(segments) or any(is_glob(seg) for seg in segments[:-1]):
                raise self.fail(
                    params.key_lines[key],
                    f"parameter {key!r}: dotted names; only the last part may be a glob",
                    rule,
                )
            if is_glob(segments[-1]):
                compile_glob(segments[-1], "name")
            items = value if isinstance(value, list) else [value]
            if not items:
                raise self.fail(params.key_lines[key], f"parameter {key!r} lists no values", rule)
            values: list[Glob | str | int | bool | None] = []
            for item in items:
                if isinstance(item, str):
                    values.append(compile_glob(item, "name"))
                elif item is None or isinstance(item, bool | int):
                    values.append(item)
                else:
                    raise self.fail(
                        params.key_lines[key],
                        f"parameter {key!r}: values are strings, integers, booleans or null",
                        rule,
                    )
            tests.append(ParameterTest(key, tuple(values)))
        return tuple(tests)

    def approvers(self, node: _Located, rule: str | None) -> tuple[str, ...]:
        if "approvers" not in node:
            return ()
        items = self.strings(node, "approvers", rule)
        for item in items:
            if not _APPROVER.fullmatch(item):
                raise self.fail(
                    _line(node, "approvers"),
                    f"approver {item!r} must be role:<name> or principal:<name>",
                    rule,
                )
        return tuple(items)

    def credential(self, node: _Located, rule: str) -> CredentialSpec | None:
        if "credential" not in node:
            return None
        spec = node["credential"]
        line = _line(node, "credential")
        if not isinstance(spec, _Located):
            raise self.fail(line, "credential must be a mapping with type and permissions", rule)
        self.keys(spec, _CREDENTIAL_KEYS, f"rule {rule} credential")
        kind = spec.get("type")
        if not isinstance(kind, str) or kind not in CREDENTIAL_TYPES:
            raise self.fail(
                line,
                f"credential type {kind!r} is not one of {', '.join(CREDENTIAL_TYPES)}",
                rule,
            )
        name = spec.get("name")
        if kind == "static":
            if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,63}", name):
                raise self.fail(line, "a static credential needs a name like pypi-upload", rule)
            permissions = self.permissions(spec, rule) if "permissions" in spec else ()
        else:
            if name is not None:
                raise self.fail(_line(spec, "name"), f"a {kind} credential has no name", rule)
            permissions = self.permissions(spec, rule)
        deliver = spec.get("deliver", "executor")
        if deliver not in DELIVERIES:
            raise self.fail(
                _line(spec, "deliver"),
                f"deliver must be {' or '.join(DELIVERIES)}, got {deliver!r}",
                rule,
            )
        limit = CREDENTIAL_TYPES[kind]
        ttl = self.duration(spec, "ttl", rule) or limit
        if ttl > limit:
            raise self.fail(
                _line(spec, "ttl"), f"a {kind} lives at most {limit} seconds, not {ttl}", rule
            )
        return CredentialSpec(
            type=kind, permissions=permissions, ttl=ttl, name=name, deliver=deliver
        )

    def permissions(self, spec: _Located, rule: str) -> tuple[tuple[str, str], ...]:
        value = spec.get("permissions")
        line = _line(spec, "permissions")
        pairs: list[tuple[Any, Any]]
        if isinstance(value, str):
            pairs = [tuple(p.split(":", 1)) if ":" in p else (p, None) for p in value.split(",")]  # type: ignore[misc]
        elif isinstance(value, Mapping):
            pairs = list(value.items())
        else:
            raise self.fail(line, "permissions must be a mapping like {contents: read}", rule)
        if not pairs:
            raise self.fail(line, "permissions must name at least one permission", rule)
        out = []
        for name, level in pairs:
            if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z_]{0,63}", name.strip()):
                raise self.fail(line, f"permission name {name!r} is not valid", rule)
            if level not in PERMISSION_LEVELS:
                raise self.fail(
                    line,
                    f"permission {name}: level must be read, write or admin, got {level!r}",
                    rule,
                )
            out.append((name.strip(), level))
        return tuple(out)

    # -- helpers --

    def keys(self, node: _Located, allowed: set[str], what: str) -> None:
        for key in node:
            if key not in allowed:
                raise self.fail(
                    node.key_lines.get(key, node.line),
                    f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})",
                )

    def strings(self, node: _Located, key: str, rule: str | None) -> list[str]:
        value = node[key]
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(i, str) and i for i in items):
            raise self.fail(
                _line(node, key), f"{key} must be a non-empty string or list of strings", rule
            )
        return items

    def text(self, node: _Located, key: str, rule: str | None) -> str | None:
        value = node.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            raise self.fail(
                _line(node, key), f"{key} must be a non-empty string of at most {MAX_TEXT}", rule
            )
        return value.strip()

    def duration(self, node: _Located, key: str, rule: str | None) -> int | None:
        value = node.get(key)
        if value is None:
            return None
        seconds = parse_duration(value) or 0
        if not 0 < seconds <= 7 * 86400:
            raise self.fail(
                _line(node, key),
                f"{key} must be a duration like 600, 10m, 1h or 2d, at most 7d (got {value!r})",
                rule,
            )
        return seconds

    def reachable(self, rule: Rule, earlier: list[Rule]) -> None:
        for other in sorted(earlier, key=lambda r: r.index):
            if _covers(other, rule):
                raise self.fail(
                    rule.line,
                    f"is unreachable: rule {other.name} on line {other.line} matches "
                    "every action it does; move it above or narrow the earlier rule",
                    rule.name,
                )


_DEFAULT_REASONS: dict[str, str] = {
    "allow": "allowed by policy",
    "review": "requires human review",
    "block": "blocked by policy",
}


def _needed_parameter(when: Conditions | None) -> str | None:
    """A top-level parameter the conditions require, for the engine's shortcut."""
    if when is None:
        return None
    for test in when.parameters:
        first = test.key.split(".")[0]
        if "." in test.key and not is_glob(first):
            return first
        if "." not in test.key and not is_glob(test.key):
            return test.key
    return None


def _needed_subcommand(when: Conditions | None) -> frozenset[str] | None:
    """The subcommands a rule can match, when they are a set of literal words."""
    if when is None or when.subcommand is None or when.subcommand.multi:
        return None
    globs = when.subcommand.single.globs
    if not globs or any(g.literal is None for g in globs):
        return None
    return frozenset(g.pattern for g in globs)


def _line(node: _Located, key: str) -> int:
    return node.key_lines.get(key, node.line)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class _CoverIndex:
    """Earlier rules by literal tool, so the reachability check stays near-linear."""

    def __init__(self) -> None:
        self.by_tool: dict[str, list[Rule]] = {}
        self.wild: list[Rule] = []
        self.all: list[Rule] = []

    def add(self, rule: Rule) -> None:
        self.all.append(rule)
        if rule.tool and all(g.literal is not None for g in rule.tool.globs):
            for glob in rule.tool.globs:
                self.by_tool.setdefault(glob.pattern, []).append(rule)
        else:
            self.wild.append(rule)

    def could_cover(self, rule: Rule) -> list[Rule]:
        if not rule.tool or any(g.literal is None for g in rule.tool.globs):
            return self.all
        found = {id(r): r for g in rule.tool.globs for r in self.by_tool.get(g.pattern, ())}
        return [*self.wild, *found.values()]


def _covers(a: Rule, b: Rule) -> bool:
    """True if rule ``a`` definitely decides everything ``b`` could (sound, incomplete)."""
    if a.when is not None and (b.when is None or (not a.restricts and b.restricts)):
        # a has conditions b lacks; or b takes "maybe" matches that a, an allow rule,
        # leaves alone.
        return False
    for field_a, field_b in (
        (a.tool, b.tool),
        (a.protocol, b.protocol),
        (a.target, b.target),
        (a.capability, b.capability),
    ):
        if field_a.globs and not (
            field_b.globs and all(any(x.covers(y) for x in field_a.globs) for y in field_b.globs)
        ):
            return False
    if a.when is None or b.when is None:
        return a.when is None
    same_subcommand = a.when.source.get("subcommand") == b.when.source.get("subcommand")
    if "args" in a.when.source and not same_subcommand:
        # args are read after the subcommand words, so the two see different words.
        return False
    return _conditions_cover(a.when.source, b.when.source)


def _conditions_cover(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    for key, value in a.items():
        if key not in b:
            return False
        if isinstance(value, Mapping):
            if not isinstance(b[key], Mapping) or not _conditions_cover(value, b[key]):
                return False
            continue
        mine = value if isinstance(value, list) else [value]
        theirs = b[key] if isinstance(b[key], list) else [b[key]]
        if not set(map(repr, theirs)) <= set(map(repr, mine)):
            return False
    return True
