"""What a rule can ask about an envelope beyond its fields: argv, flags, paths.

Pure: no I/O. Facts are derived from the envelope alone (never from the command line
text or the file system), so replaying a recorded envelope gives the same answers.

Shell envelopes carry ``parameters.argv`` and, when the shell would expand a word, its
index under ``parameters.globs`` or ``parameters.unknown``. Program-specific tables
say which options take a value (``git -C DIR``), so that ``git -C repo push -f`` has
the subcommand ``push`` and the flag ``-f``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aegisflow.envelope import Envelope
from aegisflow.policy.glob import compile_glob
from aegisflow.policy.shell import Word, WordKind, is_glob

HOME = "~"

# Options that take the next word as their value, per program (anywhere in argv).
VALUED_OPTIONS: dict[str, frozenset[str]] = {
    name: frozenset(options.split())
    for name, options in {
        "git": "-C -c --git-dir --work-tree --namespace --config-env --exec-path",
        "kubectl": "-n --namespace --context --cluster --kubeconfig -s --server --user "
        "--as --as-group --token -f --filename -o --output -l --selector",
        "helm": "-n --namespace --kube-context --kubeconfig -f --values",
        "docker": "-H --host --context --config -l --log-level",
        "gh": "-R --repo",
        "npm": "--prefix -w --workspace",
        "make": "-C --directory -f --file --makefile -I --include-dir",
        "terraform": "",
    }.items()
}

# Options whose value is free text (a message, a title), never a path or an argument.
TEXT_OPTIONS: dict[str, frozenset[str]] = {
    "git": frozenset({"-m", "--message"}),
    "gh": frozenset({"-t", "--title", "-b", "--body"}),
}
# Programs whose arguments are text, not files they read or write (redirections still are).
NO_PATH_PROGRAMS = frozenset(
    {"echo", "printf", "true", "false", "test", "[", "sleep", "pwd", "which", "type",
     "command", "seq", "expr", "yes", "basename", "dirname", ":"}
)  # fmt: skip

# Interpreters stop reading their own options at the first operand (the script), and
# these options end them too, taking the module or code as the first operand.
INTERPRETERS = ("python", "node", "perl", "ruby", "php", "deno", "bun")
_TERMINAL_OPTIONS = frozenset({"-m", "-c", "-e", "-E", "--eval", "-p", "--print", "-r"})


@dataclass(frozen=True, slots=True)
class Facts:
    """Derived view of one envelope. Shell-only fields are empty elsewhere."""

    argv: tuple[Word, ...]
    positionals: tuple[Word, ...]
    """Non-option words after the program (subcommands included), option values excluded."""
    flags: frozenset[str]
    global_flags: frozenset[str]
    """Flags before the first positional: ``git -c x=y`` but not ``git switch -c``."""
    long_flags: tuple[str, ...]
    """Long options as written (before any ``=``), for abbreviation matching."""
    options_unknown: bool
    """Some word before ``--`` is expanded by the shell and might be any option."""
    paths: tuple[Word, ...]
    """Canonical paths the action may touch; globs and unknown words keep their kind."""
    target: str | None = None
    """The target in canonical form for path targets (file, shell); None: as written."""


EMPTY = Facts((), (), frozenset(), frozenset(), (), False, ())


def facts_for(envelope: Envelope) -> Facts:
    if envelope.protocol == "file":
        target = canonical_path(envelope.target)
        return Facts((), (), frozenset(), frozenset(), (), False, (Word(target),), target)
    if envelope.protocol != "shell":
        return EMPTY
    params = envelope.parameters
    cwd_known = params.get("cwd_known", True) is not False
    cwd = envelope.target
    if cwd_known and cwd.startswith(("/", "~")) and _NEEDS_FOLDING.search(cwd):
        cwd = canonical_path(cwd)
    home_known = params.get("home_known", True) is not False
    argv = _words(params)
    if not argv:  # "> ~/.bashrc", "$(< .env)": only redirections
        paths = _paths(_redirect_words(params), cwd, cwd_known=cwd_known, home_known=home_known)
        return Facts((), (), frozenset(), frozenset(), (), False, paths, cwd)
    program = posixpath.basename(argv[0].text) if argv[0].known else ""
    valued = VALUED_OPTIONS.get(program, frozenset())
    text_options = TEXT_OPTIONS.get(program, frozenset())
    interpreter = program.startswith(INTERPRETERS)
    positionals: list[Word] = []
    flags: set[str] = set()
    global_flags: frozenset[str] | None = None
    long_flags: list[str] = []
    values: list[Word] = []
    options_unknown = False
    i = 1
    after_dashes = False
    while i < len(argv):
        word = argv[i]
        text = word.text
        i += 1
        if after_dashes:
            positionals.append(word)
            continue
        if not word.known:
            options_unknown = True
            positionals.append(word)
            continue
        if text == "--":
            after_dashes = program != "find"  # find's expression goes on after "--"
            continue
        if len(text) < 2 or not text.startswith("-"):
            if global_flags is None:
                global_flags = frozenset(flags)
            positionals.append(word)
            after_dashes = interpreter  # the rest belongs to the script
            continue
        flags.add(text)
        if text.startswith("--"):
            name, eq, value = text.partition("=")
            flags.add(name)
            long_flags.append(name)
            if name in text_options:
                i += 0 if eq else 1  # --message MESSAGE: text, neither argument nor path
            elif eq:
                values.append(Word(value))
            elif name in valued and i < len(argv):
                values.append(argv[i])
                i += 1
            elif interpreter and name in _TERMINAL_OPTIONS:
                after_dashes = True
            continue
        # A cluster of short options, read as getopt does: "-rf" is -r -f; the first
        # option that takes a value takes the rest of the word ("-nprod", "-wnprod",
        # "-o=yaml") or, when nothing is left, the next word ("-am MESSAGE").
        flags.add(text.partition("=")[0])  # single-dash long options: -toolexec=x, -delete
        if len(text) > 2 and _PATHLIKE.search(text[2:]):
            values.append(Word(text[2:]))  # "-f.env", "-o/home/x": an attached file value
        for k, letter in enumerate(text[1:], start=2):
            option = "-" + letter
            flags.add(option)
            terminal = interpreter and option in _TERMINAL_OPTIONS
            if option not in valued and option not in text_options and not terminal:
                continue
            rest = text[k:].removeprefix("=")
            if terminal:
                if rest:
                    positionals.append(Word(rest))  # python -mpytest
                after_dashes = True
            elif rest:
                if option in valued:
                    values.append(Word(rest))
            elif i < len(argv):
                if option in valued:
                    values.append(argv[i])
                i += 1
            break
    operands = [] if program in NO_PATH_PROGRAMS else [*positionals, *values]
    candidates = [*operands, *_redirect_words(params), *_wrapper_words(params)]
    paths = _paths(candidates, cwd, cwd_known=cwd_known, home_known=home_known)
    all_flags = frozenset(flags)
    return Facts(
        tuple(argv),
        tuple(positionals),
        all_flags,
        all_flags if global_flags is None else global_flags,
        tuple(long_flags),
        options_unknown,
        paths,
        cwd,
    )


_PATHLIKE = re.compile(r"[./~]")
_SPECIAL_PATH = re.compile(r"[@=~:]|\.\.")
_NEEDS_FOLDING = re.compile(r"(?:^|/)\.{1,2}(?:/|$)|//|/$|^~")


def canonical_path(path: str, cwd: str | None = None) -> str:
    """Lexically canonical form of ``path``: ``./a/../.env`` is ``.env``.

    ``~`` (home) is kept as a prefix, a relative path is joined to ``cwd`` when one is
    given, ``..`` and ``.`` segments are folded and repeated or trailing slashes dropped.
    Symbolic links are not resolved: that needs the file system.
    """
    if path.startswith("~") and (len(path) == 1 or path[1] == "/"):
        # Folded relative to home; ".." that leaves home stays ("~/../etc"): where that
        # leads depends on the home directory, which a policy cannot know.
        folded = posixpath.normpath(path[1:].lstrip("/") or ".")
        return HOME if folded == "." else f"{HOME}/{folded}"
    if path.startswith("~root") and (len(path) == 5 or path[5] == "/"):
        return canonical_path("/root" + path[5:])
    if cwd and not path.startswith("/"):
        if (
            cwd.startswith("/")
            and not _NEEDS_FOLDING.search(path)
            and not _NEEDS_FOLDING.search(cwd)
        ):
            return cwd.rstrip("/") + "/" + path if path else cwd  # already canonical
        path = posixpath.join(cwd, path)
        if cwd.startswith(HOME):
            return canonical_path(path)
    folded = posixpath.normpath(path) if path else "."
    return folded[1:] if folded.startswith("//") else folded


def lookup(parameters: Mapping[str, Any], dotted: str) -> list[Any]:
    """The values at ``a.b.c`` in nested parameters (none if absent).

    A segment reached through a list is looked up in every mapping of the list
    (``redirects.op`` is the ``op`` of every redirection), and the last segment may be a
    name glob (``env.GIT_*``): every matching key counts.
    """
    parts = dotted.split(".")
    values: list[Any] = [parameters]
    for position, part in enumerate(parts):
        glob = compile_glob(part, "name") if position == len(parts) - 1 and is_glob(part) else None
        found: list[Any] = []
        for value in values:
            for item in value if isinstance(value, list) and position else [value]:
                if not isinstance(item, Mapping):
                    continue
                if glob is None:
                    if part in item:
                        found.append(item[part])
                else:
                    found.extend(v for k, v in item.items() if isinstance(k, str) and glob.match(k))
        values = found
    return values


def _words(params: Mapping[str, Any]) -> list[Word]:
    argv = params.get("argv")
    if not isinstance(argv, Sequence) or isinstance(argv, str):
        return []
    if "globs" not in params and "unknown" not in params:
        return [Word(str(text)) for text in argv]
    kinds = _kinds(params)
    return [Word(str(text), kinds.get(i, "literal")) for i, text in enumerate(argv)]


def _kinds(params: Mapping[str, Any]) -> dict[int, WordKind]:
    kinds: dict[int, WordKind] = {}
    for key, kind in (("globs", "glob"), ("unknown", "unknown")):
        indices = params.get(key)
        if isinstance(indices, Sequence) and not isinstance(indices, str):
            for index in indices:
                if isinstance(index, int):
                    kinds[index] = kind  # type: ignore[assignment]
    return kinds


def _redirect_words(params: Mapping[str, Any]) -> list[Word]:
    redirects = params.get("redirects")
    if not isinstance(redirects, Sequence) or isinstance(redirects, str):
        return []
    out: list[Word] = []
    for item in redirects:
        if isinstance(item, Mapping) and isinstance(item.get("target"), str):
            kind = item.get("kind", "literal")
            out.append(Word(item["target"], kind if kind in ("glob", "unknown") else "literal"))
    return out


def _paths(words: list[Word], cwd: str, *, cwd_known: bool, home_known: bool) -> tuple[Word, ...]:
    out: list[Word] = []
    simple_base = cwd_known and cwd.startswith("/") and cwd != "/"
    for word in words:
        text = word.text
        if (
            simple_base
            and word.kind == "literal"
            and not text.startswith("/")
            and not _SPECIAL_PATH.search(text)
            and not _NEEDS_FOLDING.search(text)
        ):
            out.append(Word(f"{cwd}/{text}"))  # the common case: a plain relative operand
            continue
        # ".." after a directory that is a link (/proc/self/cwd, /dev/fd) is not lexical.
        through_link = ".." in word.text and _LINK_DIRS.search(f"{cwd}/{word.text}")
        for path in _path_forms(word, cwd, cwd_known=cwd_known):
            unknown = through_link or (not home_known and path.text.startswith(HOME))
            out.append(Word(path.text, "unknown") if unknown else path)
    return tuple(out)


_LINK_DIRS = re.compile(r"(?:^|/)(?:proc/|dev/(?:fd|stdin|stdout|stderr)(?:/|$))")


def _wrapper_words(params: Mapping[str, Any]) -> list[Word]:
    texts = params.get("wrapper_paths")
    if not isinstance(texts, list):
        return []
    unknown = params.get("wrapper_paths_unknown") or ()
    return [Word(str(t), "unknown" if k in unknown else "literal") for k, t in enumerate(texts)]


def _path_forms(word: Word, cwd: str, *, cwd_known: bool) -> list[Word]:
    """The paths a word may name: itself, after ``@`` (curl) or ``=`` (dd if=...)."""
    text = word.text
    if word.kind == "literal" and cwd_known and not _SPECIAL_PATH.search(text):
        if cwd.startswith("/") and not text.startswith("/") and not _NEEDS_FOLDING.search(text):
            return [Word(f"{cwd}/{text}" if cwd != "/" else f"/{text}")]  # the common case
        return [Word(canonical_path(text, cwd or None))]
    forms = [text]
    if text.startswith("@") and len(text) > 1:
        forms.append(text[1:])
    if "=" in text and not text.startswith("-"):
        forms.append(text.split("=", 1)[1])
    if ":" in text and "://" not in text:
        forms.append(text.split(":", 1)[1])  # "HEAD:.env", ":.env", "host:~/.ssh/id_rsa"
    out: list[Word] = []
    for text in forms:
        if (
            text.startswith("~")
            and not text.startswith(("~/", "~root/"))
            and text
            not in (
                "~",
                "~root",
            )
        ):
            out.append(Word(text, "unknown"))  # another user's home: where is it?
            continue
        if (not word.known and word.kind == "unknown") or (
            not cwd_known and not text.startswith(("/", "~"))
        ):
            out.append(Word(text, "unknown"))
        else:
            path = canonical_path(text, cwd or None)
            escapes_home = path.startswith(f"{HOME}/..")
            out.append(Word(path, "unknown" if escapes_home else word.kind))
    return out
