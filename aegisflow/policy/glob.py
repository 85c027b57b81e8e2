"""Glob patterns for policy rules, and shell globs that may reach them.

Pure: no I/O. Two dialects, both case-sensitive and anchored (a pattern matches a whole
value, never a substring):

* **name** globs, for protocols, tools, capabilities, subcommands, arguments and
  parameter values: ``*`` matches any run of characters (``.`` and ``/`` included),
  ``?`` exactly one character, ``[abc]`` / ``[a-z]`` / ``[!abc]`` one character of a class.
* **path** globs, for targets and path conditions: ``*`` and ``?`` never cross ``/``;
  ``**`` is a whole path segment that matches zero or more segments, so ``**/.env``
  matches ``.env``, ``/workspace/.env`` and ``~/.env``, and ``dir/**`` matches ``dir``
  and everything below it. A pattern that is just ``*`` matches every value, as an
  omitted field does.

Shell globs (``cat .e*``) are the other direction: a word whose expansion is unknown
until the shell runs. :func:`may_overlap` decides whether a shell glob can expand to a
path a policy pattern matches (bash semantics without ``dotglob``/``globstar``: ``*``
and ``?`` match neither ``/`` nor a leading ``.`` of a segment).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from aegisflow.errors import PolicyError

Dialect = Literal["name", "path"]

MAX_PATTERN = 1024
_SPECIAL = frozenset("*?[")


class GlobError(PolicyError):
    """A glob pattern is malformed."""

    reference = "policy-bad-glob"


@dataclass(frozen=True, slots=True)
class Glob:
    """A compiled glob. ``match`` is the only operation enforcement needs."""

    pattern: str
    dialect: Dialect
    regex: re.Pattern[str] | None
    """None for a literal, which is compared as a string (most tool names are)."""
    literal: str | None = None
    """The pattern itself when it has no wildcard, else None."""
    is_any: bool = False

    def match(self, value: str) -> bool:
        if self.regex is None:
            return value == self.literal
        return self.regex.fullmatch(value) is not None

    def covers(self, other: Glob) -> bool:
        """True if every value ``other`` matches is matched by this glob.

        Sound but incomplete (used to find unreachable rules): it answers True only
        for the any-pattern, equal patterns, a literal this glob matches, or a
        literal prefix followed by a final ``*`` that the other pattern starts with.
        """
        if self.is_any or self.pattern == other.pattern:
            return True
        if self.literal is not None:
            return False  # a literal covers only itself
        if other.literal is not None:
            return self.match(other.literal)
        head = self.pattern[:-1]
        if self.pattern.endswith("*") and not _SPECIAL & set(head):
            first_wild = min(other.pattern.find(c) for c in _SPECIAL if c in other.pattern)
            prefix = other.pattern[:first_wild]
            if self.dialect == "name" or self.pattern.endswith("**"):
                return prefix.startswith(head)
            rest = other.pattern[len(head) :]
            return prefix.startswith(head) and "/" not in rest and "**" not in rest
        return False


@dataclass(frozen=True, slots=True)
class GlobSet:
    """Alternative globs (any may match), matched with one regular expression."""

    globs: tuple[Glob, ...]
    literals: frozenset[str]
    regex: re.Pattern[str] | None
    """One expression for the patterns with wildcards; None when all are literal."""
    shown: str
    """The patterns for messages, shortened when there are many."""

    def __len__(self) -> int:
        return len(self.globs)

    def match(self, value: str) -> bool:
        if value in self.literals:
            return True
        return self.regex is not None and self.regex.fullmatch(value) is not None

    def which(self, value: str) -> Glob | None:
        """The first glob that matches ``value``."""
        return next((g for g in self.globs if g.match(value)), None)


EMPTY_SET = GlobSet((), frozenset(), None, "")


def glob_set(globs: tuple[Glob, ...]) -> GlobSet:
    if not globs:
        return EMPTY_SET
    literals = frozenset(g.pattern for g in globs if g.regex is None)
    wild = [g.regex.pattern for g in globs if g.regex is not None]
    shown = " | ".join(repr(g.pattern) for g in globs[:4])
    if len(globs) > 4:
        shown += f" | ... ({len(globs)} patterns)"
    return GlobSet(globs, literals, re.compile("|".join(wild)) if wild else None, shown)


def compile_glob(pattern: str, dialect: Dialect) -> Glob:
    """Compile ``pattern`` in ``dialect``.

    Raises:
        GlobError: On an empty or oversized pattern, an unclosed or empty ``[...]``,
            ``***``, or (path dialect) ``**`` that is not a whole segment.
    """
    return _compile(pattern, dialect)


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str, dialect: Dialect) -> Glob:
    if not isinstance(pattern, str) or not pattern:
        raise GlobError("a glob pattern must be a non-empty string")
    if len(pattern) > MAX_PATTERN:
        raise GlobError(f"glob pattern is {len(pattern)} characters; the limit is {MAX_PATTERN}")
    if "***" in pattern:
        raise GlobError(f"glob {pattern!r}: '***' has no meaning; use '*' or '**'")
    if pattern in ("*", "**"):
        return Glob(pattern, dialect, re.compile(r"(?s:.*)"), None, True)
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                star = _globstar(pattern, i, dialect)
                if star == "(?:/.*)?":
                    if out and out[-1] == "/":
                        out.pop()  # "dir/**" also matches "dir": the "/" becomes optional
                    else:
                        star = ".*"  # "a/**/**": the "/" was taken by the "**/" before
                out.append(star)
                i += 2
                if dialect == "path" and i < n and pattern[i] == "/":
                    i += 1  # "**/" was translated as a whole
                continue
            out.append("[^/]*" if dialect == "path" else ".*")
        elif c == "?":
            out.append("[^/]" if dialect == "path" else ".")
        elif c == "[":
            end, cls = _parse_class(pattern, i, dialect)
            out.append(cls)
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    if not _SPECIAL & set(pattern):
        return Glob(pattern, dialect, None, pattern)
    return Glob(pattern, dialect, re.compile("(?s:" + "".join(out) + ")"))


def _globstar(pattern: str, i: int, dialect: Dialect) -> str:
    if dialect == "name":
        return ".*"
    before_ok = i == 0 or pattern[i - 1] == "/"
    after = i + 2
    after_ok = after == len(pattern) or pattern[after] == "/"
    if not (before_ok and after_ok):
        raise GlobError(
            f"glob {pattern!r}: '**' must be a whole path segment (like 'a/**/b'); "
            "use '*' within a segment"
        )
    if after < len(pattern):
        return "(?:.*/)?"  # "**/": zero or more leading segments
    if i == 0:
        return ".*"
    return "(?:/.*)?"  # "dir/**"


def _parse_class(pattern: str, start: int, dialect: Dialect = "name") -> tuple[int, str]:
    """Translate the ``[...]`` at ``start``; return (index of ``]``, regex)."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    body_start = i
    if i < len(pattern) and pattern[i] == "]":
        i += 1  # a leading ] is a literal member
    while i < len(pattern) and pattern[i] != "]":
        i += 1
    if i >= len(pattern):
        raise GlobError(f"glob {pattern!r}: '[' at position {start} is never closed")
    body = pattern[body_start:i]
    if not body:
        raise GlobError(f"glob {pattern!r}: empty character class at position {start}")
    members = "".join("\\" + ch if ch in "\\^][" else ch for ch in body)
    if negate:
        # In a path a class never matches "/": it would cross a segment.
        return i, ("[^/" if dialect == "path" else "[^") + members + "]"
    return i, ("(?!/)[" if dialect == "path" else "[") + members + "]"


# -- shell globs -----------------------------------------------------------------------


def may_overlap(shell_glob: str, pattern: Glob) -> bool:
    """Whether the shell glob ``shell_glob`` can expand to a path ``pattern`` matches.

    Decided on the two patterns alone, with no file system: the answer is True when
    some string is matched by both. Character classes in the shell glob are taken as
    "any character", which can only widen the answer towards True (fail closed).
    """
    return _overlap(shell_glob, pattern.pattern, pattern.dialect)


@functools.lru_cache(maxsize=4096)
def _overlap(shell_glob: str, pattern: str, dialect: Dialect) -> bool:
    a = _shell_tokens(shell_glob)
    wild = _wildcard_segments(a)
    b = _policy_tokens(pattern, dialect)
    # A search over (position in a, position in b, whether b's current star has consumed
    # a character, whether a's current segment is still empty). Bash never lets a
    # wildcard produce a segment's leading ".", even through an empty "*" ("*.env" does
    # not match ".env"); "**/" is either empty or ends in "/".
    seen: set[tuple[int, int, bool, bool]] = set()
    stack = [(0, 0, False, True)]
    while stack:
        state = stack.pop()
        if state in seen:
            continue
        seen.add(state)
        i, j, ate_b, fresh = state
        if i == len(a) and j == len(b):
            return True
        ta = a[i] if i < len(a) else None
        tb = b[j] if j < len(b) else None
        b_star = tb is not None and tb[0] in ("star", "globstar")
        if ta is not None and ta[0] == "star":
            stack.append((i + 1, j, ate_b, fresh))
        if b_star:
            stack.append((i, j + 1, False, fresh))
            if tb == ("globstar", "dir") and not ate_b:
                stack.append((i, j + 2, False, fresh))
        if ta is None or tb is None:
            continue
        leading_dot_banned = fresh and wild[i]
        if ta[0] == "star":
            if b_star:
                stack.append((i, j, True, False))  # both take one plain character
            elif tb[0] != "lit":
                stack.append((i, j + 1, False, False))  # "?" or a class offers a plain one
            elif tb[1] != "/" and not (leading_dot_banned and tb[1] == "."):
                stack.append((i, j + 1, False, False))
        elif b_star:
            if ta[0] != "lit":
                stack.append((i + 1, j, True, False))
            elif (ta[1] != "/" or tb[0] == "globstar") and not (
                leading_dot_banned and ta[1] == "."
            ):
                stack.append((i + 1, j, True, ta[1] == "/"))
        else:
            char = _meet(ta, tb, dialect)
            if char is not None and not (leading_dot_banned and char == "."):
                stack.append((i + 1, j + 1, False, char == "/"))
    return False


Token = tuple[str, str]
"""("lit", c) | ("any", "") | ("class", members) | ("star", "") | ("globstar", kind)."""


def _shell_tokens(glob: str) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            if not out or out[-1][0] != "star":
                out.append(("star", ""))
        elif c == "?":
            out.append(("any", ""))
        elif c == "[" and "]" in glob[i + 2 :]:
            out.append(("any", ""))
            i = glob.index("]", i + 2)
        else:
            out.append(("lit", c))
        i += 1
    return out


def _wildcard_segments(tokens: list[Token]) -> list[bool]:
    """For each token: does its path segment start with a wildcard?"""
    out: list[bool] = []
    starts_wild = False
    segment_start = True
    for token in tokens:
        if segment_start:
            starts_wild = token[0] != "lit"
        out.append(starts_wild)
        segment_start = token == ("lit", "/")
    return out


def _meet(ta: Token, tb: Token, dialect: Dialect) -> str | None:
    """A character both single-character tokens can be, or None ("x" stands for any)."""
    if ta[0] == "lit":
        char = ta[1]
        if tb[0] == "lit":
            return char if char == tb[1] else None
        if char == "/" and dialect == "path":
            return None  # policy "?" and classes never match "/" in paths
        if tb[0] == "class":
            return char if compile_glob("[" + tb[1] + "]", "name").match(char) else None
        return char
    if tb[0] == "lit":
        return tb[1] if tb[1] != "/" else None  # a shell "?" never produces "/"
    return "x"


def _policy_tokens(pattern: str, dialect: Dialect) -> list[Token]:
    if dialect == "path" and pattern in ("*", "**"):
        return [("globstar", "")]
    out: list[Token] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if not pattern.startswith("**", i):
                out.append(("globstar" if dialect == "name" else "star", ""))
                i += 1
                continue
            if pattern.startswith("**/", i):
                out.append(("globstar", "dir"))  # "**/": empty, or anything ending in "/"
            else:
                if out and out[-1] == ("lit", "/"):
                    out.pop()  # "dir/**" matches "dir" too (and, widened, "dir…")
                out.append(("globstar", ""))
            i += 2
            continue
        if c == "?":
            out.append(("any", ""))
        elif c == "[":
            end = _parse_class(pattern, i)[0]
            out.append(("class", pattern[i + 1 : end]))
            i = end
        else:
            out.append(("lit", c))
        i += 1
    return out
