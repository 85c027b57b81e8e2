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
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple

import bashlex
import bashlex.errors

from aegisflow.errors import first_line

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
    sequential: bool = False
    """Runs in the line's own shell, before the commands after it (see ``_sequential``)."""
    variables: tuple[str, ...] = ()
    """Names of the shell variables its words expand (``$GITHUB_TOKEN``)."""
    extra_paths: tuple[Word, ...] = ()
    """Files its wrappers open for it (``xargs -a FILE``, ``time -o FILE``)."""
    chdir: bool = False
    """A wrapper changed its directory (``env -C DIR``): its relative paths are unknown."""


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
    sequential: bool = False
    """Runs in the line's own shell, before the commands after it: a ``cd`` here moves
    the working directory of later commands for certain."""
    variables: tuple[str, ...] = ()
    """Names of the shell variables its words expand."""
    extra_paths: tuple[Word, ...] = ()
    """Files its wrappers open for it (``xargs -a FILE``, ``time -o FILE``, ``env -C DIR``)."""
    chdir: bool = False
    """A wrapper changed its directory (``env -C DIR``): its relative paths are unknown."""

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


def expand_argv(argv: Sequence[str]) -> ParsedLine:
    """The commands an exec-style argv runs (no shell: every word is literal).

    Wrappers are looked through exactly as on a command line, so ``["nohup", "rm", "x"]``
    runs ``rm``; a ``sh -c`` script among them is parsed as shell.
    """
    if not argv or any(not isinstance(a, str) or "\x00" in a for a in argv):
        return ParsedLine((), "argv must be non-empty strings without NUL bytes")
    try:
        commands = tuple(_expand_all([RawCommand(tuple(Word(a) for a in argv))], depth=0))
    except ShellSyntaxError as e:
        return ParsedLine((), str(e))
    return ParsedLine(commands, None, "none")


def _expand_all(raw: Sequence[RawCommand], *, depth: int) -> Iterator[SimpleCommand]:
    count = 0
    for command in raw:
        for expanded in _expand(command, (), depth):
            count += 1
            if count > MAX_COMMANDS:
                raise ShellSyntaxError(f"command line has more than {MAX_COMMANDS} commands")
            yield expanded


# -- the fast lexer for the plain subset ------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t]+)
    | (?P<op>&&|\|\||;;?|\|&?|&(?!>))
    | (?P<dup>[0-9]?[<>]&(?:[0-9]+|-)(?=[ \t;|&]|$))
    | (?P<redirect>[0-9]?(?:>>|>\||>|<)|&>>|&>)
    | (?P<word>(?:[A-Za-z0-9_\-./=:,+%@^~*?\[\]]|'[^']*'|"[^"$`\\!]*")+)
    """,
    re.VERBOSE,
)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_RESERVED = words(
    "if then else elif fi case esac for select while until do done in function coproc { } ! [[ ]]"
)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")


def _lex_simple(line: str) -> list[RawCommand] | None:
    """Split a line of the plain subset, or return None to defer to bashlex."""
    found: list[tuple[list[Word], list[Redirect], str]] = []  # words, redirects, op before
    words: list[Word] = []
    redirects: list[Redirect] = []
    pending_redirect: str | None = None
    before = ""
    i = 0
    n = len(line)
    previous = ""
    while i < n:
        token = _TOKEN.match(line, i)
        if token is None:
            return None  # outside the plain subset
        kind = token.lastgroup
        text = token.group()
        i = token.end()
        if kind == "ws":
            previous = kind
            continue
        if kind == "op":
            if pending_redirect is not None or not words or text in (";;", "|&"):
                return None
            found.append((words, redirects, before))
            words, redirects, before = [], [], text
        elif kind in ("dup", "redirect"):
            if pending_redirect is not None or (text[0].isdigit() and previous == "word"):
                return None  # "a2>f" and friends: let bashlex decide
            if kind == "redirect":
                pending_redirect = text.lstrip("0123456789")
        else:
            word = _plain_word(text)
            if word is None or (i < n and line[i] in "<>" and text.isdigit()):
                return None  # a tilde form, or a descriptor number ("10>f")
            if pending_redirect is not None:
                redirects.append(Redirect(pending_redirect, word))
                pending_redirect = None
            elif not words and (word.text in _RESERVED or _ASSIGNMENT.match(word.text)):
                return None
            else:
                words.append(word)
        previous = kind or ""
    if pending_redirect is not None or (not words and before in ("&&", "||", "|")):
        return None
    if words:
        found.append((words, redirects, before))
    if not found:
        return None
    ops = [entry[2] for entry in found] + [""]
    return [
        RawCommand(tuple(w), (), tuple(r), sequential=_sequential(ops[k], ops[k + 1]))
        for k, (w, r, _) in enumerate(found)
    ]


def _plain_word(raw: str) -> Word | None:
    """A word of the plain subset: quotes removed, kind from its unquoted characters."""
    if "'" in raw or '"' in raw:
        text = _QUOTED.sub(lambda q: q.group()[1:-1], raw)
        unquoted = _QUOTED.sub("", raw)
    else:
        text = unquoted = raw
    if "~" in unquoted and not ((raw == "~" or raw.startswith("~/")) and unquoted.count("~") == 1):
        return None  # ~user, a~b: bashlex applies the tilde rules
    return Word(text, "glob" if is_glob(unquoted) else "literal")


def _sequential(before: str, after: str) -> bool:
    """Whether a top-level command runs in the main shell before the ones after it.

    True when it is neither piped nor backgrounded nor the branch of an ``||``, and it
    is not a conditional step followed by unconditional ones (``a && cd x; b``).
    """
    if before not in ("", ";", "&&") or after not in ("", ";", "&&"):
        return False
    return not (before == "&&" and after == ";")


# -- bashlex ----------------------------------------------------------------------------


_QUOTED_HEREDOC = re.compile(r"<<(-?)([ \t]*)(['\"])([A-Za-z0-9_.-]+)\3(?=[\s;|&<>)]|$)")
_ESCAPED_HEREDOC = re.compile(r"<<(-?)([ \t]*)\\([A-Za-z0-9_.-]+)(?=[\s;|&<>)]|$)")


def _bashlex_commands(line: str) -> list[RawCommand]:
    # bashlex cannot parse a quoted here-document delimiter (<<'EOF', the usual way agents
    # write commit messages). Quotes become spaces, so positions stay the same; the
    # original line still says which delimiters were quoted (whose bodies stay literal).
    if (_QUOTED_HEREDOC.search(line) or _ESCAPED_HEREDOC.search(line)) and "\\\n" in line:
        # In a quoted here-document a trailing backslash is literal; unquoted (as bashlex
        # would read it) it joins lines and could hide a command in the body.
        raise ShellSyntaxError("a quoted here-document with a line ending in a backslash")
    parsable = _QUOTED_HEREDOC.sub(r"<<\1\2 \4 ", line)
    parsable = _ESCAPED_HEREDOC.sub(r"<<\1\2 \3", parsable)
    try:
        trees = bashlex.parse(parsable)
    except (bashlex.errors.ParsingError, NotImplementedError) as e:
        raise ShellSyntaxError(f"cannot parse the command line: {first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - bashlex raises assorted errors on odd input
        raise ShellSyntaxError(
            f"cannot parse the command line ({type(e).__name__}: {first_line(e)})"
        ) from None
    out: list[RawCommand] = []
    walker = _Walker(line, out)
    for tree in trees:
        if tree.kind == "command":
            walker.command(tree, 0, sequential=True)
        elif tree.kind == "list":
            parts = list(tree.parts)
            for k, part in enumerate(parts):
                if part.kind != "command":
                    if part.kind != "operator":
                        walker.walk(part, 1)
                    continue
                before = parts[k - 1].op if k > 0 and parts[k - 1].kind == "operator" else ""
                after_node = parts[k + 1] if k + 1 < len(parts) else None
                after = (
                    after_node.op
                    if after_node is not None and after_node.kind == "operator"
                    else ""
                )
                walker.command(part, 1, sequential=_sequential(before, after))
        else:
            walker.walk(tree, 0)
    return out


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
            self.command(node, depth)
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
            first = len(self.out)
            for child in getattr(node, "parts", None) or getattr(node, "list", None) or ():
                self.walk(child, depth + 1)
            redirects = []
            for child in getattr(node, "redirects", None) or ():
                self.walk(child, depth + 1)
                redirects.extend(self._redirect(child))
            variables: list[str] = []  # "for t in $GITHUB_TOKEN; do ...": the loop's words
            for child in getattr(node, "parts", None) or ():
                if child.kind == "word":
                    _collect_variables(child, variables)
            if redirects or variables:
                # "{ cat; } < .env": a group's redirections and words reach each command.
                for k in range(first, len(self.out)):
                    found = self.out[k]
                    self.out[k] = replace(
                        found,
                        redirects=found.redirects + tuple(redirects),
                        variables=tuple(dict.fromkeys(found.variables + tuple(variables))),
                    )

    def _substitutions(self, node: Any, depth: int) -> None:
        for part in getattr(node, "parts", None) or ():
            if part.kind in _SUBSTITUTIONS:
                self.walk(part.command, depth + 1)
            else:
                self._substitutions(part, depth + 1)

    def command(self, node: Any, depth: int, *, sequential: bool = False) -> None:
        words: list[Word] = []
        assignments: list[tuple[str, Word]] = []
        redirects: list[Redirect] = []
        variables: list[str] = []
        for part in node.parts:
            if part.kind in ("word", "assignment", "redirect"):
                self.walk(part, depth + 1)  # nested substitutions run first
                _collect_variables(part, variables)
            if part.kind == "word":
                words.append(self._word(part))
            elif part.kind == "assignment":
                name, _, value = part.word.partition("=")
                kind = self._word(part).kind
                assignments.append((name.rstrip("+"), Word(value, kind)))
            if part.kind == "redirect" and part.type in ("<<", "<<-"):
                variables.extend(self._heredoc(part))
            elif part.kind == "redirect":
                redirects.extend(self._redirect(part))
        self.out.append(
            RawCommand(
                tuple(words),
                tuple(assignments),
                tuple(redirects),
                sequential=sequential,
                variables=tuple(dict.fromkeys(variables)),
            )
        )

    def _redirect(self, node: Any) -> list[Redirect]:
        """The file a redirection opens, if it opens one (not a here-doc or fd copy)."""
        output = node.output
        if output is None or isinstance(output, int | str):
            return []  # "2>&1", "<&-": descriptors, not files
        if node.type in ("<<", "<<-"):
            self._heredoc(node)
            return []
        if node.type == "<<<":
            return []
        return [Redirect(">" if node.type in (">&", "<&") else node.type, self._word(output))]

    def _heredoc(self, node: Any) -> list[str]:
        """A here-document with an unquoted delimiter expands its body: refuse commands.

        Returns:
            The variables the body expands.
        """
        delimiter = node.output
        start = getattr(delimiter, "pos", (0, 0))[0]
        quoted = start > 0 and self.line[start - 1] in "'\"\\"
        body = getattr(getattr(node, "heredoc", None), "value", "") or ""
        if not quoted and ("$(" in body or "`" in body):
            raise ShellSyntaxError(
                "a here-document body runs commands ($(...) or backticks); quote its "
                "delimiter (<<'EOF') or run them separately"
            )
        return [] if quoted else _VARIABLE.findall(body)

    def _word(self, node: Any) -> Word:
        raw = self.line[node.pos[0] : node.pos[1]]
        dynamic = [p for p in node.parts or () if p.kind != "tilde"]
        for part in dynamic:
            if part.kind == "parameter":
                _check_parameter(str(getattr(part, "value", "")))
        home = _HOME_PREFIX.match(raw)
        if home and len(dynamic) == 1 and getattr(dynamic[0], "value", None) == "HOME":
            raw = home.group(1) + "~" + raw[home.end() :]  # $HOME/x reads as ~/x
            dynamic = []
        if dynamic or "$" in _unquoted(raw):
            return Word(node.word, "unknown")
        text = _dequote(raw)
        unquoted = _unquoted(raw)
        if re.search(r"\{[^}]*(,|\.\.)[^}]*\}", unquoted):
            return Word(text, "unknown")  # brace expansion: several words
        if is_glob(unquoted):
            return Word(text, "glob")
        return Word(text)


_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_NUMERIC_OFFSET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*:[ 0-9-]*(?::[ 0-9-]*)?")


def _check_parameter(value: str) -> None:
    """Refuse ``${...}`` forms that run commands or expand a value twice.

    bashlex keeps the inside of ``${x:-$(cmd)}`` as text, so a command there would go
    unseen; ``${x@P}`` expands a value like a prompt, and ``${x:$y}`` evaluates ``$y``
    as arithmetic (where array subscripts run commands).
    """
    if "$(" in value or "`" in value or "<(" in value or ">(" in value:
        raise ShellSyntaxError(f"${{{value[:40]}}} runs a command inside a parameter expansion")
    if re.search(r"@[PEAKa]$", value):
        raise ShellSyntaxError(f"${{{value[:40]}}} expands a value a second time")
    bare = value.lstrip("!#")
    name = _NAME.match(bare)
    rest = bare[name.end() :] if name else ""
    offset = rest.startswith(":") and rest[1:2] not in ("-", "=", "?", "+")
    if offset and not _NUMERIC_OFFSET.fullmatch(bare):
        raise ShellSyntaxError(f"${{{value[:40]}}} takes an arithmetic offset from a variable")


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _collect_variables(node: Any, out: list[str]) -> None:
    """Names of the parameters a word expands (not those inside its substitutions)."""
    for part in getattr(node, "parts", None) or ():
        if part.kind == "parameter":
            value = str(getattr(part, "value", ""))
            indirect = value.startswith("!")  # ${!name}: a variable named by a variable
            name = _NAME.match(value[1:] if indirect else value)
            if name:
                out.append(("!" if indirect else "") + name.group())
            out.extend(_VARIABLE.findall(value))  # ${x:-$GITHUB_TOKEN}
        elif part.kind not in _SUBSTITUTIONS:
            _collect_variables(part, out)
    output = getattr(node, "output", None)
    if node.kind == "redirect" and output is not None and not isinstance(output, int | str):
        _collect_variables(output, out)


_HOME_PREFIX = re.compile(r'("?)\$(?:HOME|\{HOME\})(?=["/]|$)')


def _dequote(raw: str) -> str:
    """Bash quote removal for a word without expansions (bashlex's is unreliable)."""
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == "\\":
            if i + 1 < n and raw[i + 1] != "\n":
                out.append(raw[i + 1])
            i += 2
        elif c == "'":
            end = raw.find("'", i + 1)
            end = n if end < 0 else end
            out.append(raw[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            while i < n and raw[i] != '"':
                if raw[i] == "\\" and i + 1 < n and raw[i + 1] in '$`"\\\n':
                    if raw[i + 1] != "\n":
                        out.append(raw[i + 1])
                    i += 2
                else:
                    out.append(raw[i])
                    i += 1
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def is_glob(text: str) -> bool:
    """Whether unquoted ``text`` has a wildcard: ``*``, ``?`` or a closed ``[...]``."""
    if "*" in text or "?" in text:
        return True
    return "[" in text and _CLASS.search(text) is not None


_CLASS = re.compile(r"\[.+\]|\[\]\]")


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
    chdir: bool = False
    """The wrapper runs its command in another directory (``chroot``)."""


def _w(
    valued: str = "",
    skip: int = 0,
    *,
    privileged: bool = False,
    query: str = "",
    chdir: bool = False,
) -> _Wrapper:
    return _Wrapper(frozenset(valued.split()), skip, privileged, frozenset(query.split()), chdir)


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
        query="-l --list -v --validate -K --remove-timestamp -e --edit",
    ),
    "doas": _w("-u -C", privileged=True),
    "pkexec": _w("--user", privileged=True),
    "runuser": _w("-u --user -g --group -G", privileged=True),
    "chroot": _w("--userspec --groups", skip=1, privileged=True, chdir=True),
}
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})
_XARGS_VALUED = words(
    "-a --arg-file -d --delimiter -E -I -L --max-lines -n --max-args -P "
    "--max-procs -s --max-chars --process-slot-var"
)
_WATCH_VALUED = frozenset({"-n", "--interval"})
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_STDIN = Word("{stdin}", "unknown")


def _expand(command: RawCommand, via: tuple[str, ...], depth: int) -> Iterator[SimpleCommand]:
    if depth > MAX_DEPTH:
        raise ShellSyntaxError(f"wrappers are nested more than {MAX_DEPTH} deep")
    argv, assignments = command.argv, command.assignments
    peel = bool(via) and via[-1] in _ASSIGNING_WRAPPERS and not command.function
    while peel and argv and argv[0].known and _ASSIGNMENT.match(argv[0].text):
        # "sudo X=1 rm", "time X=1 rm": the assignment is not the program (but after
        # nohup, exec or command "X=1" is the program's name).
        name, _, value = argv[0].text.partition("=")
        assignments = (*assignments, (name.rstrip("+"), Word(value)))
        argv = argv[1:]
    here = SimpleCommand(
        argv,
        assignments,
        command.redirects,
        via,
        command.function,
        command.sequential,
        command.variables,
        command.extra_paths,
        command.chdir,
    )
    variables, extra_paths, chdir = command.variables, command.extra_paths, command.chdir
    command = RawCommand(argv, assignments, command.redirects, command.function)
    if command.function or not command.argv or not command.argv[0].known:
        yield here
        return
    name = posixpath.basename(command.argv[0].text)
    args = command.argv[1:]
    if name in _NAME_TAKERS and any("$(" in w.text or "`" in w.text for w in args):
        # printf -v 'a[$(cmd)]', test -v 'a[$(cmd)]': bash expands array subscripts in
        # variable names, so quoted text runs.
        raise ShellSyntaxError(f"{name} with a command inside a variable name")
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
            start, values = _skip_options(args, spec.valued)
            start += spec.skip_positionals
            extra = (
                [*values, *args[start - spec.skip_positionals : start]] if spec.chdir else values
            )
            if start < len(args):
                inner = [
                    RawCommand(tuple(args[start:]), extra_paths=tuple(extra), chdir=spec.chdir)
                ]
            else:
                keep_self = True
    elif name == "env":
        inner, keep_self = _env(args)
    elif name == "xargs":
        start, values = _skip_options(args, _XARGS_VALUED)
        marker = _xargs_replace(args[:start])
        inner_argv = tuple(
            Word(w.text, "unknown") if marker in w.text else w for w in args[start:]
        ) or (Word("echo"),)
        files = tuple(
            v
            for v, o in zip(values, _valued_names(args[:start], _XARGS_VALUED), strict=False)
            if o in ("-a", "--arg-file")
        )
        inner = [RawCommand((*inner_argv, _STDIN), extra_paths=files)]
        keep_self = False
    elif (runner := _runner(name, args)) is not None:
        inner, label = runner
        keep_self = True
    elif name in ("eval", "watch"):
        start, _ = _skip_options(args, _WATCH_VALUED if name == "watch" else frozenset())
        inner = _reparse(args[start:], f"{name} arguments")
        label = name
        keep_self = not inner
    elif name in SHELLS or name == "su":
        script = _dash_c(args, su=name == "su")
        if script is not None:
            inner = _reparse([script], f"{name} -c")
            label = f"{name} -c"
        # An interactive shell or one given an rc file runs a script before the -c one.
        startup = any(
            w.text in ("--rcfile", "--init-file", "--login", "-l")
            or (w.text.startswith("-") and not w.text.startswith("--") and "i" in w.text)
            for w in args
        )
        keep_self = script is None or name == "su" or startup
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
            raw.redirects + command.redirects,  # the wrapper's redirections reach it too
            raw.function,
            variables=tuple(dict.fromkeys(variables + raw.variables)),
            extra_paths=extra_paths + raw.extra_paths,
            chdir=chdir or raw.chdir,
        )
        yield from _expand(merged, (*via, label), depth + 1)


def _valued_names(options: Sequence[Word], valued: frozenset[str]) -> list[str]:
    """The names of the valued options in ``options``, in order (pairs with their values)."""
    names = []
    for word in options:
        name = word.text.split("=", 1)[0]
        if name in valued:
            names.append(name)
        elif not name.startswith("--") and name[:2] in valued and len(name) > 2:
            names.append(name[:2])
    return names


# Programs that run a command given in their arguments: (program, subcommand) -> how.
# "valued": options taking a value; "script": an option whose value is a shell script;
# "skip": positionals before the command (npm explore PKG -- CMD).
@dataclass(frozen=True, slots=True)
class _Runner:
    valued: frozenset[str] = frozenset()
    script: frozenset[str] = frozenset()
    skip: int = 0


def _r(valued: str = "", script: str = "", skip: int = 0) -> _Runner:
    return _Runner(frozenset(valued.split()), frozenset(script.split()), skip)


# Options a runner program takes before its subcommand (npm --prefix . exec ...).
RUNNER_GLOBALS: dict[str, frozenset[str]] = {
    name: words(options)
    for name, options in {
        "npm": "--prefix -C -w --workspace --userconfig --cache",
        "pnpm": "--dir -C --filter -F --workspace-dir",
        "yarn": "--cwd",
        "uv": "--directory --project --config-file --cache-dir -p --python",
        "poetry": "-C --directory -P --project",
        "pdm": "-p --project",
        "hatch": "-e --env",
        "tox": "--root -c --conf --workdir",
        "conda": "-n --name -p --prefix",
        "pipx": "--python",
        "bundle": "--gemfile",
        "nix": "--file -f",
    }.items()
}
RUNNERS: dict[tuple[str, str | None], _Runner] = {
    ("uv", "run"): _r(
        "--with --with-editable --with-requirements -p --python --directory --project "
        "--env-file --extra --group --only-group --package --index --default-index "
        "--index-url --extra-index-url -f --find-links"
    ),
    ("uv", "tool"): _r("--with -p --python --from"),
    ("uvx", None): _r("--with -p --python --from"),
    ("poetry", "run"): _r("-C --directory -P --project"),
    ("pdm", "run"): _r("-p --project"),
    ("hatch", "run"): _r("-e --env"),
    ("rye", "run"): _r(),
    ("pipx", "run"): _r("--spec --python"),
    ("conda", "run"): _r("-n --name -p --prefix"),
    ("pnpm", "exec"): _r("--filter -C --dir", script="-c --shell-mode"),
    ("pnpm", "dlx"): _r("--package", script="-c --shell-mode"),
    ("pnpx", None): _r("--package", script="-c --shell-mode"),
    ("npm", "exec"): _r("-p --package -w --workspace", script="-c --call"),
    ("npm", "x"): _r("-p --package -w --workspace", script="-c --call"),
    ("npx", None): _r("-p --package", script="-c --call"),
    ("npm", "explore"): _r(skip=1),
    ("yarn", "dlx"): _r("-p --package"),
    ("yarn", "exec"): _r(),
    ("bunx", None): _r(),
    ("bun", "x"): _r(),
    ("bundle", "exec"): _r(),
    ("tox", "exec"): _r("-e -c --conf --root"),
    ("nix", "run"): _r(),
}


_RUNNER_PROGRAMS = frozenset(name for name, _ in RUNNERS)


def _runner(name: str, args: Sequence[Word]) -> tuple[list[RawCommand], str] | None:
    """The command a runner (``uv run``, ``npx``, ``fd -x``) starts, if it is one."""
    if name == "fd":
        return _fd_exec(args), "fd -x"
    if name not in _RUNNER_PROGRAMS:
        return None
    spec = RUNNERS.get((name, None))
    rest: Sequence[Word] = args
    label = name
    if spec is None:
        start, _ = _skip_options(args, RUNNER_GLOBALS.get(name, frozenset()), stop_at_dashes=False)
        first = next((k for k in range(start, len(args)) if not args[k].text.startswith("-")), None)
        if first is None or not args[first].known:
            return None
        sub = args[first].text
        spec = RUNNERS.get((name, sub))
        if spec is None:
            return None
        rest, label = args[first + 1 :], f"{name} {sub}"
        if name == "uv" and sub == "tool":
            if not rest or rest[0].text != "run":
                return None
            rest, label = rest[1:], "uv tool run"
    for k, word in enumerate(rest):
        name_part = word.text.split("=", 1)[0]
        if name_part in spec.script:
            script = (
                Word(word.text.split("=", 1)[1], word.kind)
                if "=" in word.text
                else (rest[k + 1] if k + 1 < len(rest) else Word("", "unknown"))
            )
            return _reparse([script], f"{label} {name_part}"), label
    start, _ = _skip_options(rest, spec.valued)
    start += spec.skip
    if start < len(rest) and rest[start].text == "--":
        start += 1
    if start >= len(rest):
        return None
    return [RawCommand(tuple(rest[start:]))], label


def _fd_exec(args: Sequence[Word]) -> list[RawCommand]:
    out: list[RawCommand] = []
    for k, word in enumerate(args):
        text = word.text
        long_form = text.startswith(("--exec=", "--exec-batch="))
        cluster = (
            not text.startswith("--") and text.startswith("-") and any(c in text for c in "xX")
        )
        if not word.known or not (text in ("--exec", "--exec-batch") or long_form or cluster):
            continue
        end = next((j for j in range(k + 1, len(args)) if args[j].text == ";"), len(args))
        first = (Word(text.split("=", 1)[1]),) if long_form else ()
        argv = tuple(
            Word(w.text, "unknown") if "{" in w.text else w for w in (*first, *args[k + 1 : end])
        )
        if argv:
            out.append(RawCommand((*argv, _STDIN)))
    return out


def _xargs_replace(options: Sequence[Word]) -> str:
    """The replace string of ``xargs -I R`` / ``-iR`` / ``--replace=R`` (default ``{}``)."""
    for k, word in enumerate(options):
        text = word.text
        if text == "-I" and k + 1 < len(options):
            return options[k + 1].text
        if text.startswith("-I") and len(text) > 2:
            return text[2:]
        if text.startswith(("-i", "--replace=")) and len(text) > 2 and "=" not in text[:2]:
            return text.split("=", 1)[1] if "=" in text else text[2:]
    return "{}"


def _has_flag(args: Sequence[Word], flags: frozenset[str]) -> bool:
    for word in args:
        if word.text == "--" or not word.text.startswith("-"):
            return False
        if word.text in flags or word.text.split("=", 1)[0] in flags:
            return True
        if not word.text.startswith("--") and any(f"-{c}" in flags for c in word.text[1:]):
            return True
    return False


def _skip_options(
    args: Sequence[Word], valued: frozenset[str], *, stop_at_dashes: bool = True
) -> tuple[int, list[Word]]:
    """Index of the first argument after a program's own options, and their values.

    Options are read as getopt reads them: a cluster ``-la`` is ``-l -a``, and the first
    letter that takes a value takes the rest of the word or the next word (``exec -la
    NAME cmd``); a long option may be abbreviated (``--chd=DIR`` is ``--chdir=DIR``).
    """
    i = 0
    values: list[Word] = []
    while i < len(args):
        text = args[i].text
        if text == "--":
            return (i + 1 if stop_at_dashes else i), values
        if not text.startswith("-") or text == "-" or not args[i].known:
            return i, values
        i += 1
        if text.startswith("--"):
            name, eq, value = text.partition("=")
            name = _long_option(name, valued)
            if name in valued:
                if eq:
                    values.append(Word(value))
                elif i < len(args):
                    values.append(args[i])
                    i += 1
            continue
        for k, letter in enumerate(text[1:], start=2):
            if f"-{letter}" in valued:
                rest = text[k:].removeprefix("=")
                if rest:
                    values.append(Word(rest))
                elif i < len(args):
                    values.append(args[i])
                    i += 1
                break
    return i, values


def _long_option(name: str, known: frozenset[str]) -> str:
    """``name`` itself, or the one known long option it abbreviates."""
    if name in known or len(name) < 4:
        return name
    matches = [option for option in known if option.startswith(name) and option[:2] == "--"]
    return matches[0] if len(matches) == 1 else name


def _env(args: Sequence[Word]) -> tuple[list[RawCommand], bool]:
    """``env [OPTIONS] [NAME=VALUE]... [COMMAND]``, options read as getopt reads them."""
    i = 0
    assignments: list[tuple[str, Word]] = []
    directories: list[Word] = []
    while i < len(args):
        word = args[i]
        text = word.text
        if text == "--":
            i += 1
            break
        if not text.startswith("-") or not word.known:
            break
        i += 1
        if text == "-":
            continue  # "-" alone is -i
        if text.startswith("--"):
            name, eq, value = text.partition("=")
            name = _long_option(name, _ENV_LONG)
            if name not in _ENV_LONG:
                continue
            taken = Word(value, word.kind) if eq else (args[i] if i < len(args) else None)
            i += 0 if eq else 1
            if name == "--split-string":
                return _split_string([w for w in (taken, *args[i:]) if w is not None]), False
            if name == "--chdir" and taken is not None:
                directories.append(taken)
            continue
        for k, letter in enumerate(text[1:], start=2):
            if letter not in "SuCa":
                continue
            rest = text[k:]
            taken = Word(rest, word.kind) if rest else (args[i] if i < len(args) else None)
            i += 0 if rest else 1
            if letter == "S":
                return _split_string([w for w in (taken, *args[i:]) if w is not None]), False
            if letter == "C" and taken is not None:
                directories.append(taken)
            break
    while i < len(args) and _ASSIGNMENT.match(args[i].text):
        name, _, value = args[i].text.partition("=")
        assignments.append((name.rstrip("+"), Word(value, args[i].kind)))
        i += 1
    if i >= len(args):
        return [], True  # plain "env" prints the environment
    command = RawCommand(
        tuple(args[i:]),
        tuple(assignments),
        extra_paths=tuple(directories),
        chdir=bool(directories),
    )
    return [command], False


_ENV_LONG = frozenset({"--split-string", "--chdir", "--unset", "--argv0"})


def _split_string(words: Sequence[Word]) -> list[RawCommand]:
    """``env -S STRING``: env splits STRING with rules of its own (``\\_`` is a space)."""
    if any("\\" in w.text or "$" in w.text for w in words):
        raise ShellSyntaxError("env -S with escapes or variables is split by env's own rules")
    return _reparse(words, "env -S")


_ASSIGNING_WRAPPERS = frozenset({"sudo", "doas", "time"})
_NAME_TAKERS = frozenset(
    {"printf", "test", "[", "[[", "declare", "typeset", "local", "read", "unset", "export",
     "let", "readonly", "mapfile", "readarray", "eval", ":"}
)  # fmt: skip
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
