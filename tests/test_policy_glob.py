"""Policy globs: matching in both dialects, malformed patterns, covers() and may_overlap()."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from aegisflow.policy.facts import canonical_path
from aegisflow.policy.glob import (
    EMPTY_SET,
    MAX_PATTERN,
    Glob,
    GlobError,
    compile_glob,
    glob_set,
    may_overlap,
)

PROPERTY = settings(max_examples=200, deadline=None)

# -- match ------------------------------------------------------------------------------

MATCH = [
    # id, pattern, dialect, value, expected
    ("star-suffix", "*.py", "path", "a.py", True),
    ("path-star-stops-at-slash", "*.py", "path", "src/a.py", False),
    ("name-star-crosses-slash", "*.py", "name", "src/a.py", True),
    ("path-star-takes-leading-dot", "src/*", "path", "src/.env", True),
    ("path-star-one-segment", "src/*", "path", "src/a/b", False),
    ("path-star-not-empty-dir", "src/*", "path", "src", False),
    ("name-star-empty", "a*b", "name", "ab", True),
    ("name-star-run", "a*b", "name", "a/x/b", True),
    ("star-crosses-newline", "a*", "name", "a\nb", True),
    ("any-path-deep", "*", "path", "a/b/c", True),
    ("any-path-dotfile", "*", "path", "/home/u/.env", True),
    ("any-name", "*", "name", "a/b/.c", True),
    ("any-name-empty", "*", "name", "", True),
    ("globstar-alone", "**", "path", "a/b", True),
    ("qmark-one-char", "a?c", "path", "abc", True),
    ("qmark-not-zero", "a?c", "path", "ac", False),
    ("qmark-not-two", "a?c", "path", "abbc", False),
    ("path-qmark-not-slash", "a?c", "path", "a/c", False),
    ("name-qmark-slash", "a?c", "name", "a/c", True),
    ("qmark-dot", "?env", "path", ".env", True),
    ("class-member", "[abc]x", "name", "bx", True),
    ("class-non-member", "[abc]x", "name", "dx", False),
    ("class-range", "v[0-9]", "name", "v7", True),
    ("class-range-outside", "v[0-9]", "name", "vx", False),
    ("negated-bang", "[!a-c]", "name", "d", True),
    ("negated-bang-member", "[!a-c]", "name", "b", False),
    ("negated-caret", "[^x]", "name", "y", True),
    ("negated-never-slash", "a[!x]b", "path", "a/b", False),
    ("literal-open-bracket", "[[]", "name", "[", True),
    ("literal-open-bracket-only", "[[]", "name", "a", False),
    ("leading-close-bracket", "[]]", "name", "]", True),
    ("class-dot", "x[.]y", "path", "x.y", True),
    ("class-dot-not-any", "x[.]y", "path", "xay", False),
    ("class-caret-member", "[a^]", "name", "^", True),
    ("class-backslash-member", "[\\]", "name", "\\", True),
    # The module says a class never matches "/" (it would cross a segment in a path).
    ("path-class-never-slash", "a[/]b", "path", "a/b", False),
    ("path-range-never-slash", "a[.-0]b", "path", "a/b", False),
    ("globstar-prefix-bare", "**/.env", "path", ".env", True),
    ("globstar-prefix-abs", "**/.env", "path", "/workspace/.env", True),
    ("globstar-prefix-home", "**/.env", "path", "~/.env", True),
    ("globstar-prefix-deep", "**/.env", "path", "a/b/.env", True),
    ("globstar-prefix-no-partial", "**/.env", "path", "x.env", False),
    ("globstar-prefix-anchored", "**/.env", "path", ".env.local", False),
    ("globstar-then-star", "**/.env.*", "path", "/w/.env.local", True),
    ("globstar-middle-zero", "a/**/b", "path", "a/b", True),
    ("globstar-middle-many", "a/**/b", "path", "a/x/y/b", True),
    ("globstar-middle-whole-segments", "a/**/b", "path", "a/xb", False),
    ("globstar-middle-not-prefix", "a/**/b", "path", "xa/b", False),
    ("dir-globstar-dir-itself", "dir/**", "path", "dir", True),
    ("dir-globstar-below", "dir/**", "path", "dir/x/y", True),
    ("dir-globstar-not-sibling", "dir/**", "path", "dirx", False),
    ("dir-globstar-not-parent", "dir/**", "path", "di", False),
    ("home-globstar", "~/.ssh/**", "path", "~/.ssh/id_rsa", True),
    ("home-globstar-not-other-home", "~/.ssh/**", "path", "/root/.ssh/id_rsa", False),
    ("double-globstar", "**/**", "path", "b", True),
    ("double-globstar-nested", "a/**/**", "path", "a/b", True),
    ("name-double-star", "a**b", "name", "a/x/b", True),
    ("case-sensitive-ext", "*.PY", "path", "a.py", False),
    ("case-sensitive-name", "README*", "name", "readme.md", False),
    ("case-sensitive-class", "[A-Z]", "name", "a", False),
    ("anchored-no-prefix", "env", "name", "environment", False),
    ("anchored-no-suffix", "env", "name", "my-env", False),
    ("anchored-path", "src", "path", "src/x", False),
    ("anchored-ext", "*.py", "path", "a.pyc", False),
    ("exact", "push", "name", "push", True),
    ("dot-is-literal", "a.b", "name", "axb", False),
    ("dot-matches-dot", "a.b", "name", "a.b", True),
    ("plus-is-literal", "a+b", "name", "aab", False),
    ("plus-matches-plus", "a+b", "name", "a+b", True),
    ("parens-literal", "(x)", "name", "(x)", True),
    ("parens-no-group", "(x)", "name", "x", False),
    ("dollar-literal", "$x", "name", "$x", True),
    ("dollar-no-anchor", "a$", "name", "a", False),
    ("caret-literal", "^a", "name", "^a", True),
    ("caret-no-anchor", "^a", "name", "a", False),
    ("pipe-no-alternation", "a|b", "name", "a", False),
    ("pipe-literal", "a|b", "name", "a|b", True),
    ("braces-no-repeat", "a{1,2}", "name", "aa", False),
    ("braces-literal", "a{1,2}", "name", "a{1,2}", True),
    ("backslash-d-literal", "\\d", "name", "1", False),
]


@pytest.mark.parametrize(
    ("pattern", "dialect", "value", "expected"),
    [row[1:] for row in MATCH],
    ids=[row[0] for row in MATCH],
)
def test_match(pattern: str, dialect: str, value: str, expected: bool) -> None:
    assert compile_glob(pattern, dialect).match(value) is expected  # type: ignore[arg-type]


BAD = [
    ("empty", "", "name"),
    ("empty-path", "", "path"),
    ("triple-star", "***", "name"),
    ("triple-star-inside", "a/***/b", "path"),
    ("unclosed-class", "[abc", "name"),
    ("unclosed-class-end", "a[", "path"),
    ("empty-class", "[]", "name"),
    ("empty-negated-class", "[!]", "name"),
    ("globstar-inside-segment", "a**b", "path"),
    ("globstar-segment-prefix", "**a", "path"),
    ("globstar-segment-suffix", "a/b**", "path"),
    ("oversize", "a" * (MAX_PATTERN + 1), "name"),
]


@pytest.mark.parametrize(
    ("pattern", "dialect"), [row[1:] for row in BAD], ids=[row[0] for row in BAD]
)
def test_bad_globs(pattern: str, dialect: str) -> None:
    with pytest.raises(GlobError):
        compile_glob(pattern, dialect)  # type: ignore[arg-type]


def test_globstar_inside_a_name_is_a_star() -> None:
    assert compile_glob("a**b", "name").match("axxb")


def test_longest_pattern_compiles() -> None:
    assert compile_glob("a" * MAX_PATTERN, "name").literal == "a" * MAX_PATTERN


@pytest.mark.parametrize(
    ("pattern", "literal", "is_any"),
    [
        ("*", None, True),
        ("**", None, True),
        ("a.py", "a.py", False),
        ("/etc/passwd", "/etc/passwd", False),
        ("a*", None, False),
        ("a?", None, False),
        ("[a]", None, False),
    ],
    ids=["star", "globstar", "file", "abs", "star-suffix", "qmark", "class"],
)
def test_literal_and_any(pattern: str, literal: str | None, is_any: bool) -> None:
    glob = compile_glob(pattern, "path")
    assert (glob.literal, glob.is_any) == (literal, is_any)


def test_glob_set() -> None:
    globs = tuple(compile_glob(p, "path") for p in ("*.md", "docs/**", "*.py"))
    union = glob_set(globs)
    assert len(union) == 3
    assert union.match("a.py")
    assert union.match("docs")
    assert not union.match("src/a.py")
    assert union.which("a.py") is globs[2]
    assert union.which("docs/x/y.md") is globs[1]
    assert union.which("x.txt") is None
    assert "'*.md'" in union.shown


def test_glob_set_shown_is_shortened() -> None:
    union = glob_set(tuple(compile_glob(f"p{i}", "name") for i in range(6)))
    assert union.shown.endswith("... (6 patterns)")
    assert union.match("p5")


def test_empty_glob_set_matches_nothing() -> None:
    assert glob_set(()) is EMPTY_SET
    assert len(EMPTY_SET) == 0
    assert not EMPTY_SET.match("")
    assert not EMPTY_SET.match("anything")


# -- covers -----------------------------------------------------------------------------

COVERS = [
    # id, a, b, dialect, a.covers(b)
    ("any-covers-deep", "*", "a/b/**", "path", True),
    ("globstar-covers", "**", "src/**", "path", True),
    ("equal", "src/*.py", "src/*.py", "path", True),
    ("star-covers-literal", "src/*", "src/a.py", "path", True),
    ("star-not-deeper-literal", "src/*", "src/a/b.py", "path", False),
    ("star-covers-narrower-star", "src/*", "src/*.py", "path", True),
    ("star-not-deeper-star", "src/*", "src/*/x", "path", False),
    ("star-not-globstar", "src/*", "src/**", "path", False),
    ("root-star-not-root-globstar", "/*", "/**", "path", False),
    ("prefix-not-across-slash", "src*", "src/?", "path", False),
    ("name-prefix", "git*", "git-[ab]*", "name", True),
    ("name-qmark", "a*", "a?", "name", True),
    ("name-star-crosses", "*.py", "src/a.py", "name", True),
    ("path-star-no-cross", "*.py", "src/a.py", "path", False),
    ("literal-covers-itself", "a.py", "a.py", "path", True),
    ("literal-not-other", "a.py", "a.pyc", "path", False),
    ("literal-not-star", "a.py", "*", "path", False),
    ("literal-not-glob", "a.py", "a.p?", "path", False),
    ("other-prefix-mismatch", "src/a*", "src/b*", "path", False),
]


@pytest.mark.parametrize(
    ("a", "b", "dialect", "expected"),
    [row[1:] for row in COVERS],
    ids=[row[0] for row in COVERS],
)
def test_covers(a: str, b: str, dialect: str, expected: bool) -> None:
    assert compile_glob(a, dialect).covers(compile_glob(b, dialect)) is expected  # type: ignore[arg-type]


# A small grammar of path globs: segments of a, b, ".", *, ?, classes, or "**".
SEGMENT_PART = st.sampled_from(["a", "b", ".", "*", "?", "[ab]", "[!a]"])
SEGMENT = st.lists(SEGMENT_PART, min_size=1, max_size=3).map("".join) | st.just("**")
PATH_GLOB = st.builds(
    lambda lead, segments: lead + "/".join(segments),
    st.sampled_from(["", "/", "~/"]),
    st.lists(SEGMENT, min_size=1, max_size=3),
)
LITERAL_PATH = st.text(alphabet="ab./", min_size=1, max_size=6)
PREFIX_STAR = st.builds(lambda s: s + "*", LITERAL_PATH)
ANY_GLOB = st.one_of(PATH_GLOB, LITERAL_PATH, PREFIX_STAR)

# Every string over the alphabet up to length 5; the canonical ones are the values that
# policy globs meet (paths reach the engine through canonical_path).
WITNESSES = tuple("".join(chars) for n in range(6) for chars in itertools.product("ab./", repeat=n))


def _canonical(value: str) -> bool:
    return canonical_path(value) == value and value not in (".", "")


CANONICAL_WITNESSES = tuple(w for w in WITNESSES if _canonical(w))


def _compile(pattern: str) -> Glob:
    try:
        return compile_glob(pattern, "path")
    except GlobError:
        assume(False)
        raise


@PROPERTY
@given(ANY_GLOB, LITERAL_PATH)
def test_covers_a_literal_implies_match(a: str, b: str) -> None:
    glob_a, glob_b = _compile(a), _compile(b)
    assert glob_b.literal == b
    if glob_a.covers(glob_b):
        assert glob_a.match(b)


# Pairs that reach covers()' prefix rule: "head*" against "head" and some glob tail.
PREFIX_PAIR = st.builds(
    lambda head, tail: (head + "*", head + tail),
    st.text(alphabet="ab./", max_size=4),
    st.lists(st.sampled_from(["a", ".", "/", "*", "?", "[ab]", "**"]), min_size=1, max_size=4).map(
        "".join
    ),
)


@PROPERTY
@given(st.tuples(ANY_GLOB, ANY_GLOB) | PREFIX_PAIR)
@example(("a/*", "a/**"))
def test_covers_is_sound(pair: tuple[str, str]) -> None:
    """covers() finds unreachable rules: it must never claim more than it knows."""
    a, b = pair
    glob_a, glob_b = _compile(a), _compile(b)
    if glob_a.covers(glob_b):
        escaped = [w for w in CANONICAL_WITNESSES if glob_b.match(w) and not glob_a.match(w)]
        assert not escaped, f"{b!r} matches {escaped[:3]} but {a!r} does not"


# -- may_overlap ------------------------------------------------------------------------

OVERLAP = [
    # id, shell glob, policy path glob, expected
    ("dot-e-star-reaches-env", ".e*", "**/.env", True),
    ("star-skips-dotfiles", "*", "**/.env", False),
    ("py-files-not-env", "src/*.py", "**/.env", False),
    ("ssh-dir", "~/.ssh/*", "**/.ssh/**", True),
    ("py-not-key", "*.py", "**/id_rsa", False),
    ("abs-dot-star", "/workspace/.*", "**/.env", True),
    ("abs-star-skips-dotfiles", "/workspace/*", "**/.env", False),
    ("star-dir-then-env", "*/.env", "**/.env", True),
    ("star-star-skips-dotfiles", "*/*", "**/.env", False),
    ("qmark-no-leading-dot", "?env", "**/.env", False),
    ("qmark-after-dot", ".?nv", "**/.env", True),
    ("class-after-dot", ".[a-z]nv", "**/.env", True),
    ("class-no-leading-dot", "[.]env", "**/.env", False),
    ("star-before-dot-is-not-leading-dot", "*.env", "**/.env", False),
    ("etc-star", "/etc/*", "/etc/passwd", True),
    ("etc-other-prefix", "/etc/p*", "/etc/shadow", False),
    ("qmark-in-middle", "/e?c/shadow", "/etc/shadow", True),
    ("shell-class-widened", "/etc/[sp]*", "/etc/shadow", True),
    ("key-prefix", "~/.ssh/id_*", "**/id_rsa", True),
    ("star-reaches-dir", "*", "src/**", True),
    ("star-star", "*", "*", True),
    ("star-globstar", "*", "**", True),
    ("literal-mismatch", "a", "b", False),
    ("literal-dir-itself", "~/.ssh", "~/.ssh/**", True),
    ("root-star-reaches-dir", "/*", "/etc/**", True),
    ("root-dot-star-not-etc", "/.*", "/etc/**", False),
    ("dot-segment-in-middle", "x/.*/y", "**/.git/**", True),
    ("star-segment-not-git", "x/*/y", "**/.git/**", False),
    ("policy-star-one-segment", "a/*/b", "a/*", False),
    ("policy-qmark-not-slash", "a/*", "a?*", False),
    ("policy-class", "v*", "v[0-9]", True),
    ("policy-class-mismatch", "x*", "v[0-9]", False),
]


@pytest.mark.parametrize(
    ("shell", "policy", "expected"),
    [row[1:] for row in OVERLAP],
    ids=[row[0] for row in OVERLAP],
)
def test_may_overlap(shell: str, policy: str, expected: bool) -> None:
    assert may_overlap(shell, compile_glob(policy, "path")) is expected


def _widened(glob: Glob, value: str) -> bool:
    """The documented over-approximation: ``dir/**`` is read as ``dir`` then anything."""
    if not glob.pattern.endswith("/**"):
        return False
    head = glob.pattern[: -len("/**")]
    if not head:
        return True
    prefix = compile_glob(head, "path")
    return any(prefix.match(value[:k]) for k in range(len(value) + 1))


@st.composite
def _pattern_and_word(draw: st.DrawFn) -> tuple[str, str]:
    """A path glob and a literal word, often one made from the glob's own wildcards."""
    pattern = draw(PATH_GLOB)
    if draw(st.booleans()):
        return pattern, draw(st.text(alphabet="ab./~", min_size=1, max_size=7))
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(draw(st.text(alphabet="ab./", max_size=2)))
        elif c in "?[":
            out.append(draw(st.sampled_from("ab./")))
            if c == "[":
                i = pattern.index("]", i + 2)
        else:
            out.append(c)
        i += 1
    return pattern, "".join(out)


@PROPERTY
@given(_pattern_and_word())
@example(("a?b", "a/b"))
def test_literal_shell_word_overlaps_exactly_when_it_matches(case: tuple[str, str]) -> None:
    # A word without glob characters expands to itself; words reach may_overlap canonical.
    pattern, word = case
    assume(word and canonical_path(word) == word)
    glob = _compile(pattern)
    overlaps = may_overlap(word, glob)
    if glob.match(word):
        assert overlaps
    elif overlaps:
        assert _widened(glob, word), f"{word!r} overlaps {pattern!r} but cannot match it"


def _bash_regex(shell_glob: str) -> re.Pattern[str]:
    """Bash pathname expansion without dotglob: no "/" and no explicit leading "."."""
    out: list[str] = []
    i = 0
    while i < len(shell_glob):
        c = shell_glob[i]
        at_start = i == 0 or shell_glob[i - 1] == "/"
        if c == "*":
            while shell_glob.startswith("*", i + 1):
                i += 1
            out.append(r"(?!\.)[^/]*" if at_start else r"[^/]*")
        elif c == "?":
            out.append(r"[^/.]" if at_start else r"[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


@PROPERTY
@given(st.text(alphabet="ab./*?", min_size=1, max_size=5), PATH_GLOB)
def test_may_overlap_never_misses_an_expansion(shell: str, pattern: str) -> None:
    """Fail closed: when bash could expand to a path the pattern matches, say so."""
    glob = _compile(pattern)
    expands = _bash_regex(shell)
    witness = next((w for w in CANONICAL_WITNESSES if expands.fullmatch(w) and glob.match(w)), None)
    if witness is not None:
        assert may_overlap(shell, glob), f"{shell!r} can expand to {witness!r}"
