"""Shell command lines, parsed into the simple commands they would run.

Pure: no I/O, nothing is executed. A command line is split into simple commands across
``;``, ``&&``, ``||``, ``|``, ``&``, subshells, groups, ``if``/``for``/``while``,
function bodies, ``$(...)``, backticks and process substitution. Wrappers are looked
through: ``sudo``, ``env``, ``nohup``, ``nice``, ``timeout``, ``time``, ``command``,
``exec``, ``xargs``, ``stdbuf``, ``ionice``, ``setsid``, ``watch``, ``eval``,
``bash -c``/``sh -c``/``su -c``, and ``find -exec``/``-execdir``/``-ok``. Privileged
wrappers (``sudo``, ``doas``, ``su``, ...) stay commands of their own as well.

Two parsers produce the same :class:`RawCommand` lists: a small lexer for the plain
subset almost every agent command uses (words, quotes, lists, pipes, simple
redirections), and ``bashlex`` for everything else. The lexer refuses anything outside
its subset and hands it to ``bashlex``; a differential test keeps the two in agreement.

A word is *literal*, a *glob* (unquoted ``*``, ``?`` or ``[`` that the shell expands
against the file system) or *unknown* (parameter expansion, command substitution, brace
expansion). ``$HOME``/``${HOME}`` at the start of a word is read as ``~``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import bashlex
import bashlex.errors

WordKind = Literal["literal", "glob", "unknown"]

MAX_LINE = 65536
MAX_DEPTH = 8
MAX_COMMANDS = 512


def words(text: str) -> frozenset[str]:
    """The set of space-separated words in ``text`` (keeps long tables readable)."""
    return frozenset(text.split())


class Word(NamedTuple):
    """One shell word; a named tuple because policy checks create many of them."""

    text: str
    kind: WordKind = "literal"

    @property
    def known(self) -> bool:
        return self.kind == "literal"


@dataclass(frozen=True, slots=True)
class Redirect:
    op: str
    target: Word


@dataclass(frozen=True, slots=True)
class RawCommand:
    """One simple command as written: words, assignments and file redirections."""

    argv: tuple[Word, ...]
    assignments: tuple[tuple[str, Word], ...] = ()
    redirects: tuple[Redirect, ...] = ()
    function: bool = False


@dataclass(frozen=True, slots=True)
class SimpleCommand:
    """A command that would run, after looking through wrappers.

    ``via`` lists the wrappers it was found inside, outermost first (``("sudo",)``,
    ``("bash -c",)``, ``("find -exec",)``). ``function`` marks a shell function
    definition (``argv`` is its name). An empty ``argv`` is a bare assignment.
    """

    argv: tuple[Word, ...]
    assignments: tuple[tuple[str, Word], ...] = ()
    redirects: tuple[Redirect, ...] = ()
    via: tuple[str, ...] = ()
    function: bool = False

    @property
    def program(self) -> Word | None:
        """The program, as the basename of argv[0] (``/bin/rm`` runs ``rm``)."""
        if not self.argv:
            return None
        first = self.argv[0]
        if not first.known:
            return first
        return Word(posixpath.basename(first.text.rstrip("/")) or first.text)


@dataclass(frozen=True, slots=True)
class ParsedLine:
    commands: tuple[SimpleCommand, ...]
    error: str | None = None
    parser: Literal["lexer", "bashlex", "none"] = "none"

    @property
    def ok(self) -> bool:
        return self.error is None


class ShellSyntaxError(Exception):
    """Internal: the line cannot be parsed (reported through ParsedLine.error)."""


def parse_command_line(line: str, *, force_bashlex: bool = False) -> ParsedLine:
    """Split ``line`` into the simple commands it would run.

    Never raises on any string: input that cannot be parsed (syntax errors, constructs
    ``bashlex`` does not support, oversize or NUL bytes) comes back with ``error`` set
    and no commands, and callers must not allow it.
    """
    if len(line) > MAX_LINE:
        return ParsedLine((), f"command line is {len(line)} characters; the limit is {MAX_LINE}")
    if "\x00" in line:
        return ParsedLine((), "command line contains a NUL byte")
    if not line.strip():
        return ParsedLine((), "command line is empty")
    try:
        raw = None if force_bashlex else _lex_simple(line)
        parser: Literal["lexer", "bashlex"] = "lexer" if raw is not None else "bashlex"
        if raw is None:
            raw = _bashlex_commands(line)
        commands = tuple(_expand_all(raw, depth=0))
    except ShellSyntaxError as e:
        return ParsedLine((), str(e))
    if not commands:
        return ParsedLine((), "command line has no commands")
    return ParsedLine(commands, None, parser)


def _expand_all(raw: Sequence[RawCommand], *, depth: int) -> Iterator[SimpleCommand]:
    count = 0
    for command in raw:
        for expanded in _expand(command, (), depth):
            count += 1
            if count > MAX_COMMANDS:
                raise ShellSyntaxError(f"command line has more than {MAX_COMMANDS} commands")
            yield expanded


# -- the fast lexer for the plain subset ------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_\-./=:,+%@^~*?\[\]]")
_REDIRECT = re.compile(r"(?:[0-9]?(?:>>|>\||>|<)|&>>|&>)")
_DUP = re.compile(r"[0-9]?[<>]&(?:[0-9]+|-)")
_RESERVED = words(
    "if then else elif fi case esac for select while until do done in function coproc { } ! [[ ]]"
)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")


def _lex_simple(line: str) -> list[RawCommand] | None:
    """Split a line of the plain subset, or return None to defer to bashlex."""
    commands: list[RawCommand] = []
    words: list[Word] = []
    redirects: list[Redirect] = []
    pending_redirect: str | None = None
    i = 0
    n = len(line)

    def finish() -> bool:
        if pending_redirect is not None or not words:
            return False
        commands.append(RawCommand(tuple(words), (), tuple(redirects)))
        words.clear()
        redirects.clear()
        return True

    while i < n:
        c = line[i]
        if c in " \t":
            i += 1
            continue
        if c in ";|&":
            op = line[i : i + 2] if line[i : i + 2] in ("&&", "||") else c
            if line.startswith("&>", i):
                pass  # a redirection, handled below
            elif line.startswith(";;", i) or line.startswith("|&", i) or not finish():
                return None
            else:
                i += len(op)
                continue
        dup = _DUP.match(line, i)
        if dup and (i == 0 or line[i - 1] in " \t"):
            if pending_redirect is not None:
                return None
            i = dup.end()
            continue
        redirect = _REDIRECT.match(line, i)
        if redirect and (i == 0 or line[i - 1] in " \t" or not line[i].isdigit()):
            if pending_redirect is not None or redirect.group() == "<<":
                return None
            pending_redirect = redirect.group().lstrip("0123456789")
            i = redirect.end()
            continue
        word, kind, i = _lex_word(line, i)
        if word is None:
            return None
        if pending_redirect is not None:
            redirects.append(Redirect(pending_redirect, Word(word, kind)))
            pending_redirect = None
            continue
        if not words and (word in _RESERVED or _ASSIGNMENT.match(word)):
            return None
        words.append(Word(word, kind))
    if words:
        finish()
    elif pending_redirect is not None or line.rstrip().endswith(("&&", "||", "|")):
        return None
    return commands or None


_WORD_END = re.compile(r"[ \t;|&<>'\"]")


def _word_end(line: str, i: int) -> int:
    match = _WORD_END.search(line, i)
    return match.start() if match else len(line)


def _lex_word(line: str, i: int) -> tuple[str | None, WordKind, int]:
    out: list[str] = []
    kind: WordKind = "literal"
    start = i
    n = len(line)
    while i < n:
        c = line[i]
        if c in " \t;|&<>":
            break
        if c == "'":
            end = line.find("'", i + 1)
            if end < 0:
                return None, kind, i
            out.append(line[i + 1 : end])
            i = end + 1
        elif c == '"':
            end = line.find('"', i + 1)
            if end < 0:
                return None, kind, i
            inner = line[i + 1 : end]
            if any(ch in inner for ch in "$`\\!"):
                return None, kind, i
            out.append(inner)
            i = end + 1
        elif _PLAIN.match(c):
            if c in "*?" or (c == "[" and "]" in line[i + 1 : _word_end(line, i)]):
                kind = "glob"
            if c == "~" and i != start:
                return None, kind, i  # only a leading tilde is left to bashlex's rules
            out.append(c)
            i += 1
        else:
            return None, kind, i
    if line[start] == "~" and not (line[start:i] == "~" or line.startswith("~/", start)):
        return None, kind, i  # ~user and friends
    return "".join(out), kind, i


# -- bashlex ----------------------------------------------------------------------------


def _bashlex_commands(line: str) -> list[RawCommand]:
    try:
        trees = bashlex.parse(line)
    except (bashlex.errors.ParsingError, NotImplementedError) as e:
        raise ShellSyntaxError(f"cannot parse the command line: {_first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - bashlex raises assorted errors on odd input
        raise ShellSyntaxError(
            f"cannot parse the command line ({type(e).__name__}: {_first_line(e)})"
        ) from None
    out: list[RawCommand] = []
    walker = _Walker(line, out)
    for tree in trees:
        walker.walk(tree, 0)
    return out


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


_SUBSTITUTIONS = frozenset({"commandsubstitution", "processsubstitution"})


@dataclass
class _Walker:
    line: str
    out: list[RawCommand]
    nodes: int = field(default=0)

    def walk(self, node: Any, depth: int) -> None:
        self.nodes += 1
        if depth > 64 or self.nodes > 20000:
            raise ShellSyntaxError("command line is nested too deeply")
        kind = node.kind
        if kind == "command":
            self._command(node, depth)
        elif kind == "function":
            self.out.append(RawCommand((Word(node.name.word),), function=True))
            self.walk(node.body, depth + 1)
        elif kind in ("word", "assignment"):
            self._substitutions(node, depth)
        elif kind == "redirect":
            if not isinstance(node.output, int | str) and node.output is not None:
                self._substitutions(node.output, depth)
        elif kind in _SUBSTITUTIONS:
            self.walk(node.command, depth + 1)
        else:
            for child in getattr(node, "parts", None) or getattr(node, "list", None) or ():
                self.walk(child, depth + 1)
            for child in getattr(node, "redirects", None) or ():
                self.walk(child, depth + 1)

    def _substitutions(self, node: Any, depth: int) -> None:
        for part in getattr(node, "parts", None) or ():
            if part.kind in _SUBSTITUTIONS:
                self.walk(part.command, depth + 1)
            else:
                self._substitutions(part, depth + 1)

    def _command(self, node: Any, depth: int) -> None:
        words: list[Word] = []
        assignments: list[tuple[str, Word]] = []
        redirects: list[Redirect] = []
        for part in node.parts:
            if part.kind in ("word", "assignment", "redirect"):
                self.walk(part, depth + 1)  # nested substitutions run first
            if part.kind == "word":
                words.append(self._word(part))
            elif part.kind == "assignment":
                name, _, _ = part.word.partition("=")
                assignments.append((name.rstrip("+"), self._word(part)))
            elif part.kind == "redirect" and part.type not in ("<<", "<<-", "<<<", ">&", "<&"):
                if not isinstance(part.output, int | str) and part.output is not None:
                    redirects.append(Redirect(part.type, self._word(part.output)))
            elif (
                part.kind == "redirect"
                and part.type in (">&", "<&")
                and not isinstance(part.output, int | str)
                and part.output is not None
            ):
                redirects.append(Redirect(">", self._word(part.output)))  # >&file
        self.out.append(RawCommand(tuple(words), tuple(assignments), tuple(redirects)))

    def _word(self, node: Any) -> Word:
        text: str = node.word
        raw = self.line[node.pos[0] : node.pos[1]]
        dynamic = [p for p in node.parts or () if p.kind != "tilde"]
        if raw.startswith(("$HOME", "${HOME}", '"$HOME"', '"${HOME}"')) and len(dynamic) == 1:
            head = "$HOME" if text.startswith("$HOME") else "${HOME}"
            if text.startswith(head):
                text = "~" + text[len(head) :]
                dynamic = []
        if dynamic or "$'" in raw or '$"' in raw:
            return Word(text, "unknown")
        unquoted = _unquoted(raw)
        if re.search(r"\{[^}]*(,|\.\.)[^}]*\}", unquoted):
            return Word(text, "unknown")  # brace expansion: several words
        if is_glob(unquoted):
            return Word(text, "glob")
        return Word(text)


def is_glob(text: str) -> bool:
    """Whether unquoted ``text`` has a wildcard: ``*``, ``?`` or a closed ``[...]``."""
    return "*" in text or "?" in text or re.search(r"\[.+\]|\[\]\]", text) is not None


def _unquoted(raw: str) -> str:
    """The characters of ``raw`` outside quotes and escapes."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            i += 2
            continue
        if c in "'\"":
            end = raw.find(c, i + 1)
            i = len(raw) if end < 0 else end + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


# -- wrappers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Wrapper:
    """How a wrapper's own options look, and where its command starts."""

    valued: frozenset[str] = frozenset()
    skip_positionals: int = 0
    privileged: bool = False
    query_flags: frozenset[str] = frozenset()
    """Flags that make the wrapper print instead of run (``command -v``)."""


def _w(
    valued: str = "",
    skip: int = 0,
    *,
    privileged: bool = False,
    query: str = "",
) -> _Wrapper:
    return _Wrapper(frozenset(valued.split()), skip, privileged, frozenset(query.split()))


WRAPPERS: dict[str, _Wrapper] = {
    "nohup": _w(),
    "setsid": _w(),
    "builtin": _w(),
    "nice": _w("-n --adjustment"),
    "timeout": _w("-s --signal -k --kill-after", skip=1),
    "time": _w("-f --format -o --output"),
    "command": _w(query="-v -V"),
    "exec": _w("-a"),
    "stdbuf": _w("-i -o -e --input --output --error"),
    "ionice": _w("-c --class -n --classdata", query="-p --pid -P --pgid -u --uid"),
    "chrt": _w(skip=1),
    "taskset": _w(skip=1),
    "unbuffer": _w(),
    "sudo": _w(
        "-u --user -g --group -C --close-from -D --chdir -h --host -p --prompt "
        "-r --role -t --type -U --other-user -T --command-timeout",
        privileged=True,
        query="-l --list -v --validate -k -K --reset-timestamp -e --edit",
    ),
    "doas": _w("-u -C", privileged=True),
    "pkexec": _w("--user", privileged=True),
    "runuser": _w("-u --user -g --group -G", privileged=True),
    "chroot": _w("--userspec --groups", skip=1, privileged=True),
}
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})
_XARGS_VALUED = words(
    "-a --arg-file -d --delimiter -E -I -L --max-lines -n --max-args -P "
    "--max-procs -s --max-chars --process-slot-var"
)
_ENV_VALUED = words("-u --unset -C --chdir")
_WATCH_VALUED = frozenset({"-n", "--interval"})
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_STDIN = Word("{stdin}", "unknown")


def _expand(command: RawCommand, via: tuple[str, ...], depth: int) -> Iterator[SimpleCommand]:
    if depth > MAX_DEPTH:
        raise ShellSyntaxError(f"wrappers are nested more than {MAX_DEPTH} deep")
    here = SimpleCommand(
        command.argv, command.assignments, command.redirects, via, command.function
    )
    if command.function or not command.argv or not command.argv[0].known:
        yield here
        return
    name = posixpath.basename(command.argv[0].text)
    args = command.argv[1:]
    inner: list[RawCommand] = []
    label = name
    keep_self = False
    if name in WRAPPERS:
        spec = WRAPPERS[name]
        keep_self = spec.privileged
        if _has_flag(args, spec.query_flags):
            inner = []
            keep_self = True
        else:
            start = _skip_options(args, spec.valued) + spec.skip_positionals
            if start < len(args):
                inner = [RawCommand(tuple(args[start:]))]
            else:
                keep_self = True
    elif name == "env":
        inner, keep_self = _env(args)
    elif name == "xargs":
        start = _skip_options(args, _XARGS_VALUED)
        argv = tuple(args[start:]) or (Word("echo"),)
        inner = [RawCommand((*argv, _STDIN))]
        keep_self = False
    elif name in ("eval", "watch"):
        start = _skip_options(args, _WATCH_VALUED if name == "watch" else frozenset())
        inner = _reparse(args[start:], f"{name} arguments")
        label = name
        keep_self = not inner
    elif name in SHELLS or name == "su":
        script = _dash_c(args, su=name == "su")
        if script is not None:
            inner = _reparse([script], f"{name} -c")
            label = f"{name} -c"
        keep_self = script is None or name == "su"
    elif name == "find":
        inner = _find_exec(args)
        keep_self = True
        label = "find -exec"
    else:
        yield here
        return
    if keep_self:
        yield here
    for raw in inner:
        merged = RawCommand(
            raw.argv,
            command.assignments + raw.assignments,
            raw.redirects or (command.redirects if not keep_self else ()),
            raw.function,
        )
        yield from _expand(merged, (*via, label), depth + 1)


def _has_flag(args: Sequence[Word], flags: frozenset[str]) -> bool:
    for word in args:
        if word.text == "--" or not word.text.startswith("-"):
            return False
        if word.text in flags or word.text.split("=", 1)[0] in flags:
            return True
        if not word.text.startswith("--") and any(f"-{c}" in flags for c in word.text[1:]):
            return True
    return False


def _skip_options(args: Sequence[Word], valued: frozenset[str]) -> int:
    """Index of the first argument after the wrapper's own options."""
    i = 0
    while i < len(args):
        text = args[i].text
        if text == "--":
            return i + 1
        if not text.startswith("-") or text == "-" or not args[i].known:
            return i
        if text in valued:
            i += 2
            continue
        if text.startswith("--") or len(text) == 2:
            i += 1
            continue
        # A short cluster: "-u root" vs "-uroot"; a valued letter takes the rest.
        i += 1
    return i


def _env(args: Sequence[Word]) -> tuple[list[RawCommand], bool]:
    i = 0
    assignments: list[tuple[str, Word]] = []
    while i < len(args):
        text = args[i].text
        if text == "--":
            i += 1
            break
        if text in _ENV_VALUED:
            i += 2
        elif text.startswith("-") and text not in ("-",):
            if text in ("-S", "--split-string") and i + 1 < len(args):
                return _reparse(args[i + 1 :], "env -S"), False
            if text.startswith(("-S", "--split-string=")):
                rest = text.split("=", 1)[1] if "=" in text else text[2:]
                return _reparse([Word(rest, args[i].kind), *args[i + 1 :]], "env -S"), False
            i += 1
        else:
            break
    while i < len(args) and _ASSIGNMENT.match(args[i].text):
        name, _, _ = args[i].text.partition("=")
        assignments.append((name.rstrip("+"), args[i]))
        i += 1
    if i >= len(args):
        return [], True  # plain "env" prints the environment
    return [RawCommand(tuple(args[i:]), tuple(assignments))], False


_SHELL_VALUED = frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"})
_SU_VALUED = frozenset({"-s", "--shell", "-g", "--group", "-G", "--supp-group", "-w"})


def _dash_c(args: Sequence[Word], *, su: bool) -> Word | None:
    """The script of ``sh -c SCRIPT`` or ``su [user] -c SCRIPT``, or None without ``-c``.

    A shell takes the first argument after its options as the script when any short
    option cluster contains ``c`` (``-c``, ``-lc``, ``-ec``); ``su`` takes the value of
    ``-c``/``--command`` wherever it appears.
    """
    i = 0
    has_c = False
    while i < len(args):
        text = args[i].text
        if su:
            if text in ("-c", "--command"):
                return args[i + 1] if i + 1 < len(args) else Word("", "unknown")
            if text.startswith("--command="):
                return Word(text.split("=", 1)[1], args[i].kind)
            i += 2 if text in _SU_VALUED else 1
            continue
        if text == "--" or not text.startswith(("-", "+")) or text in ("-", "+"):
            break
        if text in _SHELL_VALUED:
            i += 2
            continue
        if not text.startswith("--") and "c" in text[1:]:
            has_c = True
        i += 1
    if not has_c:
        return None
    if text == "--":
        i += 1
    return args[i] if i < len(args) else Word("", "unknown")


def _reparse(words: Sequence[Word], what: str) -> list[RawCommand]:
    if not words:
        return []
    if any(not w.known for w in words):
        # The script itself is computed at run time: nothing can be said about it.
        raise ShellSyntaxError(f"{what} is computed when the shell runs and cannot be checked")
    script = " ".join(w.text for w in words)
    parsed = _lex_simple(script)
    return parsed if parsed is not None else _bashlex_commands(script)


def _find_exec(args: Sequence[Word]) -> list[RawCommand]:
    out: list[RawCommand] = []
    i = 0
    while i < len(args):
        if args[i].text in _FIND_EXEC and args[i].known:
            j = i + 1
            while j < len(args) and args[j].text not in (";", "+"):
                j += 1
            argv = tuple(Word(w.text, "unknown") if "{}" in w.text else w for w in args[i + 1 : j])
            if not argv:
                raise ShellSyntaxError(f"find {args[i].text} has no command")
            out.append(RawCommand(argv))
            i = j
        i += 1
    return out
