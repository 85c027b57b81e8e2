"""Compiled policy rules and the one matcher that enforcement and ``explain`` share.

Pure: no I/O. A :class:`Rule` is built by :mod:`aegisflow.policy.loader` from YAML and
never changes. :meth:`Rule.check` answers for one envelope whether the rule matches and
why; enforcement and ``explain`` both call it, so they cannot disagree.

Conditions are three-valued. When the shell would expand a word (``cat $F``,
``cat .e*``), a condition may be neither true nor false until the command runs. Such a
*maybe* counts as a match for a rule that restricts (``review``, ``block``) and as no
match for a rule that permits (``allow``): unknowable input never widens what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aegisflow.envelope import Envelope
from aegisflow.policy.facts import Facts, lookup
from aegisflow.policy.glob import EMPTY_SET, Glob, GlobSet, glob_set, may_overlap
from aegisflow.policy.shell import Word

DecisionName = Literal["allow", "review", "block"]
DECISIONS: tuple[DecisionName, ...] = ("allow", "review", "block")
STRICTNESS = {"allow": 0, "review": 1, "block": 2}

Tri = bool | None
"""True, False, or None for "maybe" (depends on a shell expansion)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialSpec:
    """What the credential broker mints when the rule's action is allowed."""

    type: str
    permissions: tuple[tuple[str, str], ...]
    ttl: int
    """Lifetime in seconds."""
    name: str | None = None
    """For ``static``: which secret configured on the server."""
    deliver: str = "executor"
    """``executor``: the service uses it and nobody else sees it; ``caller``: the token is
    returned to the caller (the MCP bridge puts it on the upstream call)."""

    @property
    def scope(self) -> str:
        """``pull_requests:write,contents:read``: the permissions in policy order (a static
        credential's name first, as ``static:<name>``)."""
        parts = [f"static:{self.name}"] if self.name else []
        parts += [f"{name}:{level}" for name, level in self.permissions]
        return ",".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "scope": self.scope, "ttl": self.ttl}
        if self.deliver != "executor":
            out["deliver"] = self.deliver
        return out


@dataclass(frozen=True, slots=True)
class ParameterTest:
    key: str
    values: tuple[Glob | str | int | bool | None, ...]

    def check(self, parameters: Mapping[str, Any]) -> tuple[bool, str]:
        found = lookup(parameters, self.key)
        if not found:
            return False, f"parameter {self.key} is absent"
        items = [i for value in found for i in (value if isinstance(value, list) else [value])]
        for item in items:
            for expected in self.values:
                if isinstance(expected, Glob):
                    if isinstance(item, str) and expected.match(item):
                        return True, f"parameter {self.key}={item!r} matches {expected.pattern!r}"
                elif type(item) is type(expected) and item == expected:
                    return True, f"parameter {self.key}={item!r}"
        return False, f"parameter {self.key}={_short(found)} matches none of {self._shown()}"

    def _shown(self) -> str:
        return ", ".join(v.pattern if isinstance(v, Glob) else repr(v) for v in self.values)


@dataclass(frozen=True, slots=True, kw_only=True)
class Conditions:
    """``when:`` of a rule. Keys are ANDed; the alternatives under a key are ORed."""

    subcommand: Subcommands | None = None
    flags: tuple[str, ...] = ()
    global_flags: tuple[str, ...] = ()
    args: GlobSet = EMPTY_SET
    paths: GlobSet = EMPTY_SET
    parameters: tuple[ParameterTest, ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict)
    """The condition as written, to compare rules and to show in ``explain``."""
    paths_only: bool = field(init=False)
    """Only ``paths``: the most common shape (secrets, system files), checked quickly."""

    def __post_init__(self) -> None:
        others = (
            self.parameters
            or self.subcommand is not None
            or self.flags
            or self.global_flags
            or self.args.globs
        )
        object.__setattr__(self, "paths_only", bool(self.paths.globs) and not others)

    def check(self, envelope: Envelope, facts: Facts, *, restricts: bool) -> tuple[Tri, str]:
        """Evaluate every condition; (result, explanation).

        ``args`` and ``paths`` read differently by decision: a rule that restricts
        matches when *any* argument or path matches; an allow rule only when there is
        at least one and *every* one matches, so ``cat README.md .env`` is not allowed
        by a rule that allows reading ``*.md``.
        """
        if restricts and self.paths_only:
            # The most common shape (a secrets or system-files rule): one regex per path.
            for path in facts.paths:
                if path.kind != "literal":
                    break  # the general code below decides "maybe"
                if self.paths.match(path.text):
                    glob = self.paths.which(path.text)
                    shown = glob.pattern if glob else self.paths.shown
                    return True, f"path {path.text!r} matches {shown!r}"
            else:
                if facts.paths:
                    return False, f"no path matches {self.paths.shown}"
        notes: list[str] = []
        for parameter in self.parameters:  # cheapest first: dictionary lookups
            ok, why = parameter.check(envelope.parameters)
            if not ok:
                return False, why
            notes.append(why)
        if self.paths.globs and not facts.paths:
            return False, "the action names no path"
        if (self.subcommand is not None or self.args.globs) and not facts.positionals:
            return False, "the action has no arguments"
        maybe: list[str] = []
        skip = 0
        if self.subcommand is not None:
            result, why, skip = self.subcommand.check(facts)
            if result is False:
                return False, why
            (maybe if result is None else notes).append(why)
        for wanted, present in ((self.flags, facts.flags), (self.global_flags, facts.global_flags)):
            if not wanted:
                continue
            result, why = _flags(wanted, present, facts)
            if result is False:
                return False, why
            (maybe if result is None else notes).append(why)
        for name, globs, words, dialect_check in (
            ("argument", self.args, facts.positionals[skip:], _name_check),
            ("path", self.paths, facts.paths, _path_check),
        ):
            if not globs.globs:
                continue
            result, why = _quantified(name, globs, words, dialect_check, restricts=restricts)
            if result is False:
                return False, why
            (maybe if result is None else notes).append(why)
        if maybe:
            return None, "; ".join(maybe)
        return True, "; ".join(notes)


@dataclass(frozen=True, slots=True)
class Subcommands:
    """``when.subcommand``: alternatives of one or more leading positional words.

    One-word alternatives (most of them) are tried with a single regular expression;
    the longest matching alternative decides how many words ``args`` skips.
    """

    single: GlobSet
    multi: tuple[tuple[Glob, ...], ...]
    shown: str

    def __len__(self) -> int:
        return len(self.single) + len(self.multi)

    def check(self, facts: Facts) -> tuple[Tri, str, int]:
        words = facts.positionals
        unknown = False
        for alternative in self.multi:
            result: Tri = True
            for glob, word in zip(alternative, words, strict=False):
                if not word.known:
                    result = None
                elif not glob.match(word.text):
                    result = False
                    break
            if len(words) < len(alternative) and result is not False:
                result = None if facts.options_unknown else False
            if result is True:
                shown = " ".join(g.pattern for g in alternative)
                return True, f"subcommand {shown!r}", len(alternative)
            unknown = unknown or result is None
        if self.single.globs and words:
            first = words[0]
            if not first.known:
                unknown = True
            elif self.single.match(first.text):
                return True, f"subcommand {first.text!r}", 1
        if unknown or (not words and facts.options_unknown):
            return None, f"subcommand may be {self.shown} once the shell expands it", 0
        shown = words[0].text if words else "(none)"
        return False, f"subcommand {shown!r} is not {self.shown}", 0


def subcommands(alternatives: tuple[tuple[Glob, ...], ...]) -> Subcommands:
    single = glob_set(tuple(alt[0] for alt in alternatives if len(alt) == 1))
    multi = tuple(sorted((alt for alt in alternatives if len(alt) > 1), key=len, reverse=True))
    shown = " | ".join(repr(" ".join(g.pattern for g in alt)) for alt in alternatives[:4])
    if len(alternatives) > 4:
        shown += f" | ... ({len(alternatives)} alternatives)"
    return Subcommands(single, multi, shown)


def _flags(wanted: tuple[str, ...], present: frozenset[str], facts: Facts) -> tuple[Tri, str]:
    for flag in wanted:
        if flag in present:
            return True, f"flag {flag}"
        if flag.startswith("--") and "=" not in flag:
            for written in facts.long_flags:
                # getopt_long and git accept any unambiguous prefix (--forc is --force,
                # --m is --mirror); an ambiguous one is refused by the program itself.
                if len(written) >= 3 and flag.startswith(written) and written in present:
                    return True, f"flag {written} (abbreviates {flag})"
    if facts.options_unknown:
        return None, f"an expanded word may be one of {', '.join(wanted)}"
    return False, f"none of the flags {', '.join(wanted)}"


def _name_check(word: Word, globs: GlobSet) -> Tri:
    if word.kind != "literal":
        return None
    return globs.match(word.text)


def _path_check(word: Word, globs: GlobSet) -> Tri:
    if word.kind == "literal":
        return globs.match(word.text)
    if word.kind == "unknown" or any(may_overlap(word.text, g) for g in globs.globs):
        return None
    return False


def _quantified(
    name: str,
    globs: GlobSet,
    words: tuple[Word, ...],
    check: Callable[[Word, GlobSet], Tri],
    *,
    restricts: bool,
) -> tuple[Tri, str]:
    if restricts:
        maybe: str | None = None
        for word in words:
            result = check(word, globs)
            if result:
                glob = globs.which(word.text)
                shown = glob.pattern if glob else globs.shown
                return True, f"{name} {word.text!r} matches {shown!r}"
            if result is None and maybe is None:
                maybe = f"{name} {word.text!r} may expand to match {globs.shown}"
        if maybe:
            return None, maybe
        return False, f"no {name} matches {globs.shown}"
    if not words:
        return False, f"no {name} to match {globs.shown}"
    unsure: str | None = None
    for word in words:
        result = check(word, globs)
        if result:
            continue
        if result is None:
            unsure = unsure or f"{name} {word.text!r} is only known once the shell runs"
            continue
        return False, f"{name} {word.text!r} matches none of {globs.shown}"
    if unsure:
        return None, unsure
    return True, f"every {name} matches {globs.shown}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One compiled rule. Empty field tuples match anything."""

    index: int
    name: str
    """``matched_rule``: the rule's ``id``, else ``protocol:tool`` as written."""
    line: int
    protocol: GlobSet
    tool: GlobSet
    target: GlobSet
    capability: GlobSet
    decision: DecisionName
    reason: str
    suggested_alternative: str | None = None
    when: Conditions | None = None
    approvers: tuple[str, ...] = ()
    credential: CredentialSpec | None = None
    approval_expiry: int | None = None
    needs_parameter: str | None = None
    """A top-level parameter without which the conditions cannot hold (an index hint)."""
    needs_subcommand: frozenset[str] | None = None
    """The literal subcommands the conditions accept, when that is all they accept."""
    restricts: bool = field(init=False)
    """Review and block rules restrict: they take "maybe" matches; allow rules do not."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "restricts", self.decision != "allow")

    def head_matches(self, protocol: str, tool: str) -> bool:
        return (not self.protocol.globs or self.protocol.match(protocol)) and (
            not self.tool.globs or self.tool.match(tool)
        )

    def check(self, envelope: Envelope, facts: Facts) -> tuple[bool, str]:
        """Whether this rule decides ``envelope``, and why (or why not)."""
        if self.protocol.globs and not self.protocol.match(envelope.protocol):
            return False, f"protocol {envelope.protocol!r} is not {self.protocol.shown}"
        if self.tool.globs and not self.tool.match(envelope.tool):
            return False, f"tool {envelope.tool!r} is not {self.tool.shown}"
        return self.check_rest(envelope, facts)

    def check_rest(self, envelope: Envelope, facts: Facts) -> tuple[bool, str]:
        """:meth:`check` after protocol and tool are known to match (the engine's index)."""
        target = envelope.target if facts.target is None else facts.target
        if self.target.globs and not self.target.match(target):
            return False, f"target {target!r} is not {self.target.shown}"
        if self.capability.globs and not self.capability.match(envelope.capability):
            return False, f"capability {envelope.capability!r} is not {self.capability.shown}"
        if self.when is None:
            return True, "protocol, tool, target and capability match"
        result, why = self.when.check(envelope, facts, restricts=self.restricts)
        if result is None:
            if self.restricts:
                return True, f"{why} (unknown until run; a {self.decision} rule takes it)"
            return False, f"{why} (unknown until run; an allow rule does not take it)"
        return result, why


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
