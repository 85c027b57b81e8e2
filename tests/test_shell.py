"""Shell command lines: the simple commands they run, word kinds, and what cannot be parsed."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aegisflow.policy.shell import (
    MAX_LINE,
    ParsedLine,
    SimpleCommand,
    Word,
    parse_command_line,
    words,
)

PROPERTY = settings(max_examples=200, deadline=None)

Expected = list[tuple[list[str], tuple[str, ...]]]


def shape(parsed: ParsedLine) -> Expected:
    """Each command as (argv texts, via)."""
    return [([w.text for w in c.argv], c.via) for c in parsed.commands]


def parse_ok(line: str) -> ParsedLine:
    parsed = parse_command_line(line)
    assert parsed.ok, parsed.error
    assert parsed.error is None
    assert parsed.commands
    return parsed


def only(parsed: ParsedLine, program: str) -> SimpleCommand:
    (command,) = [c for c in parsed.commands if c.program == Word(program)]
    return command


PARSE: list[tuple[str, str, Expected]] = [
    ("simple", "ls", [(["ls"], ())]),
    ("tab-separated", "ls\tx", [(["ls", "x"], ())]),
    ("sequence", "git status; git diff", [(["git", "status"], ()), (["git", "diff"], ())]),
    ("or-list", "false || true", [(["false"], ()), (["true"], ())]),
    (
        "and-pipe",
        "cd src && pytest | tail",
        [(["cd", "src"], ()), (["pytest"], ()), (["tail"], ())],
    ),
    (
        "pipe-redirections",
        "ls -l | grep foo > out.txt 2>&1",
        [(["ls", "-l"], ()), (["grep", "foo"], ())],
    ),
    ("background", "nohup python x.py &", [(["python", "x.py"], ("nohup",))]),
    ("newline", "ls\nrm x", [(["ls"], ()), (["rm", "x"], ())]),
    ("pipe-stderr", "ls |& cat", [(["ls"], ()), (["cat"], ())]),
    ("comment", "ls # rm -rf /", [(["ls"], ())]),
    ("quotes-joined", "echo 'a' \"b\" c'd'", [(["echo", "a", "b", "cd"], ())]),
    ("abs-program", "/bin/rm -rf x", [(["/bin/rm", "-rf", "x"], ())]),
    (
        "sudo-valued-option",
        "sudo -u root rm -rf /",
        [(["sudo", "-u", "root", "rm", "-rf", "/"], ()), (["rm", "-rf", "/"], ("sudo",))],
    ),
    (
        "sudo-flag",
        "sudo -E rm x",
        [(["sudo", "-E", "rm", "x"], ()), (["rm", "x"], ("sudo",))],
    ),
    ("sudo-list-is-query", "sudo -l", [(["sudo", "-l"], ())]),
    ("sudo-alone", "sudo", [(["sudo"], ())]),
    ("doas", "doas rm x", [(["doas", "rm", "x"], ()), (["rm", "x"], ("doas",))]),
    (
        "chroot-skips-dir",
        "chroot /mnt rm x",
        [(["chroot", "/mnt", "rm", "x"], ()), (["rm", "x"], ("chroot",))],
    ),
    (
        "nested-wrappers",
        "nohup sudo rm x",
        [(["sudo", "rm", "x"], ("nohup",)), (["rm", "x"], ("nohup", "sudo"))],
    ),
    ("bash-lc", "bash -lc 'git push -f'", [(["git", "push", "-f"], ("bash -c",))]),
    ("sh-c-list", "sh -c 'rm a; rm b'", [(["rm", "a"], ("sh -c",)), (["rm", "b"], ("sh -c",))]),
    ("bash-x-c-arg0", "bash -x -c 'rm x' arg0", [(["rm", "x"], ("bash -c",))]),
    ("bash-o-value", "bash -o errexit -c 'rm x'", [(["rm", "x"], ("bash -c",))]),
    ("bash-long-option", "bash --norc -c 'rm x'", [(["rm", "x"], ("bash -c",))]),
    ("sh-c-dashdash", "sh -c -- 'rm x'", [(["rm", "x"], ("sh -c",))]),
    ("bash-script", "bash script.sh", [(["bash", "script.sh"], ())]),
    (
        "su-c",
        "su -c 'rm x' root",
        [(["su", "-c", "rm x", "root"], ()), (["rm", "x"], ("su -c",))],
    ),
    (
        "sudo-bash-c",
        "sudo bash -c 'rm x'",
        [(["sudo", "bash", "-c", "rm x"], ()), (["rm", "x"], ("sudo", "bash -c"))],
    ),
    (
        "find-exec",
        "find . -exec rm {} \\;",
        [(["find", ".", "-exec", "rm", "{}", ";"], ()), (["rm", "{}"], ("find -exec",))],
    ),
    (
        "find-execdir-plus",
        "find . -type f -execdir chmod 644 {} +",
        [
            (["find", ".", "-type", "f", "-execdir", "chmod", "644", "{}", "+"], ()),
            (["chmod", "644", "{}"], ("find -exec",)),
        ],
    ),
    (
        "find-without-exec",
        "find . -name '*.pyc' -delete",
        [(["find", ".", "-name", "*.pyc", "-delete"], ())],
    ),
    ("xargs", "xargs rm", [(["rm", "{stdin}"], ("xargs",))]),
    ("xargs-options", "xargs -n1 rm -f", [(["rm", "-f", "{stdin}"], ("xargs",))]),
    ("xargs-alone-echoes", "xargs", [(["echo", "{stdin}"], ("xargs",))]),
    (
        "command-substitution",
        "echo $(cat .env)",
        [(["cat", ".env"], ()), (["echo", "$(cat .env)"], ())],
    ),
    ("backticks", "echo `rm x`", [(["rm", "x"], ()), (["echo", "`rm x`"], ())]),
    ("process-substitution", "cat <(rm x)", [(["rm", "x"], ()), (["cat", "<(rm x)"], ())]),
    ("here-string-substitution", 'cat <<< "$(id)"', [(["id"], ()), (["cat"], ())]),
    ("assignment-substitution", "a=$(rm x)", [(["rm", "x"], ()), ([], ())]),
    ("fork-bomb", ":(){ :|:& };:", [([":"], ()), ([":"], ()), ([":"], ()), ([":"], ())]),
    ("time", "time rm x", [(["rm", "x"], ("time",))]),
    ("command-v-is-query", "command -v rm", [(["command", "-v", "rm"], ())]),
    ("command-pv-is-query", "command -pv rm", [(["command", "-pv", "rm"], ())]),
    ("command-runs", "command rm x", [(["rm", "x"], ("command",))]),
    ("env-alone", "env", [(["env"], ())]),
    ("env-assignments", "env -i X=1 rm x", [(["rm", "x"], ("env",))]),
    ("env-valued-option", "env -u HOME rm x", [(["rm", "x"], ("env",))]),
    ("env-split-string", "env -S 'rm x'", [(["rm", "x"], ("env",))]),
    ("heredoc", "cat <<EOF\nhello\nEOF", [(["cat"], ())]),
    ("prefix-assignments", "X=1 Y=2 make", [(["make"], ())]),
    ("nice", "nice -n 10 make", [(["make"], ("nice",))]),
    ("timeout-duration", "timeout -s KILL 5 rm x", [(["rm", "x"], ("timeout",))]),
    ("exec", "exec ls", [(["ls"], ("exec",))]),
    ("exec-alone", "exec", [(["exec"], ())]),
    ("stdbuf", "stdbuf -oL tail -f log", [(["tail", "-f", "log"], ("stdbuf",))]),
    ("ionice-cluster", "ionice -c3 rm x", [(["rm", "x"], ("ionice",))]),
    ("setsid", "setsid ls", [(["ls"], ("setsid",))]),
    ("eval", "eval 'rm -rf /'", [(["rm", "-rf", "/"], ("eval",))]),
    ("watch", "watch -n 1 ls", [(["ls"], ("watch",))]),
    ("subshell", "(cd a && rm b)", [(["cd", "a"], ()), (["rm", "b"], ())]),
    ("group", "{ rm a; rm b; }", [(["rm", "a"], ()), (["rm", "b"], ())]),
    ("if", "if true; then rm x; fi", [(["true"], ()), (["rm", "x"], ())]),
    ("for", "for f in a b; do rm $f; done", [(["rm", "$f"], ())]),
    ("while", "while true; do ls; done", [(["true"], ()), (["ls"], ())]),
]


@pytest.mark.parametrize(
    ("line", "expected"), [row[1:] for row in PARSE], ids=[row[0] for row in PARSE]
)
def test_parse(line: str, expected: Expected) -> None:
    assert shape(parse_ok(line)) == expected


def test_xargs_appends_unknown_stdin() -> None:
    (command,) = parse_ok("xargs rm").commands
    assert command.argv[-1] == Word("{stdin}", "unknown")


def test_find_exec_placeholder_is_unknown() -> None:
    rm = only(parse_ok("find . -exec rm {} \\;"), "rm")
    assert rm.argv[1] == Word("{}", "unknown")


def test_fork_bomb_defines_a_function() -> None:
    parsed = parse_ok(":(){ :|:& };:")
    assert [c.function for c in parsed.commands] == [True, False, False, False]


def test_bare_assignment_has_no_program() -> None:
    (command,) = parse_ok("X=1").commands
    assert command.argv == ()
    assert command.program is None
    assert [name for name, _ in command.assignments] == ["X"]


@pytest.mark.parametrize(
    ("line", "names"),
    [
        ("X=1 Y=2 make", ["X", "Y"]),
        ("env -i X=1 rm x", ["X"]),
        ("A+=b make", ["A"]),
        ("make", []),
    ],
    ids=["prefix", "env", "append", "none"],
)
def test_assignments(line: str, names: list[str]) -> None:
    command = parse_ok(line).commands[-1]
    assert [name for name, _ in command.assignments] == names


# -- redirections -----------------------------------------------------------------------

REDIRECTS = [
    # id, line, (op, target text, target kind) of each command that runs
    ("dup-is-not-a-path", "ls 2>&1", [[]]),
    ("dup-to-stderr", "ls >&2", [[]]),
    ("close-fd", "ls 2>&-", [[]]),
    ("stdout", "echo hi > out", [[(">", "out", "literal")]]),
    ("both", "make &> log", [[("&>", "log", "literal")]]),
    ("both-append", "ls &>> f", [[("&>>", "f", "literal")]]),
    ("stderr-file", "ls 2> err.txt", [[(">", "err.txt", "literal")]]),
    ("stderr-devnull", "git push 2>/dev/null", [[(">", "/dev/null", "literal")]]),
    ("append", "ls >> out", [[(">>", "out", "literal")]]),
    ("clobber", "ls >| f", [[(">|", "f", "literal")]]),
    ("stdin", "ls < in.txt", [[("<", "in.txt", "literal")]]),
    ("dup-to-file", "echo x >&out.txt", [[(">", "out.txt", "literal")]]),
    ("heredoc-not-a-path", "cat <<EOF\nx\nEOF", [[]]),
    ("unknown-target", "echo > $F", [[(">", "$F", "unknown")]]),
    ("glob-target", "echo > *.log", [[(">", "*.log", "glob")]]),
    (
        "interleaved",
        "ls > f x 2>&1 y < z",
        [[(">", "f", "literal"), ("<", "z", "literal")]],
    ),
    ("pipeline", "ls | grep x > out 2>&1", [[], [(">", "out", "literal")]]),
    ("wrapper-passes-on", "nohup rm x > log", [[(">", "log", "literal")]]),
    (
        "privileged-wrapper-and-its-command",
        "sudo rm x > log",
        [[(">", "log", "literal")], [(">", "log", "literal")]],
    ),
]


@pytest.mark.parametrize(
    ("line", "expected"), [row[1:] for row in REDIRECTS], ids=[row[0] for row in REDIRECTS]
)
def test_redirects(line: str, expected: list[list[tuple[str, str, str]]]) -> None:
    parsed = parse_ok(line)
    got = [[(r.op, r.target.text, r.target.kind) for r in c.redirects] for c in parsed.commands]
    assert got == expected


def test_interleaved_redirections_leave_the_words() -> None:
    (command,) = parse_ok("ls > f x 2>&1 y < z").commands
    assert [w.text for w in command.argv] == ["ls", "x", "y"]


# -- word kinds -------------------------------------------------------------------------

KINDS = [
    # id, line, index in the last command's argv, expected word
    ("home-var", "ls $HOME/x", 1, Word("~/x")),
    ("home-var-alone", "ls $HOME", 1, Word("~")),
    ("home-braced", "ls ${HOME}/x", 1, Word("~/x")),
    ("home-quoted", 'cat "$HOME"/x', 1, Word("~/x")),
    ("home-then-var", "ls $HOME$X", 1, Word("$HOME$X", "unknown")),
    ("tilde", "ls ~/x", 1, Word("~/x")),
    ("quoted-var", 'cat "$F"', 1, Word("$F", "unknown")),
    ("var", "rm $F", 1, Word("$F", "unknown")),
    ("ansi-c-quote", "echo $'a'", 1, Word("$a", "unknown")),
    ("substitution-in-word", "ls $(pwd)/x", 1, Word("$(pwd)/x", "unknown")),
    ("star-glob", "cat .e*", 1, Word(".e*", "glob")),
    ("qmark-glob", "ls a?", 1, Word("a?", "glob")),
    ("class-glob", "ls [a]x", 1, Word("[a]x", "glob")),
    ("quoted-part-then-star", "ls 'a'*", 1, Word("a*", "glob")),
    ("single-quoted-star", "cat '*.py'", 1, Word("*.py")),
    ("double-quoted-star", 'cat "*.py"', 1, Word("*.py")),
    ("quoted-class", 'ls "[a]"', 1, Word("[a]")),
    ("escaped-star", "ls \\*", 1, Word("*")),
    ("brace-list", "echo {a,b}", 1, Word("{a,b}", "unknown")),
    ("brace-range", "echo {1..3}", 1, Word("{1..3}", "unknown")),
    ("test-bracket", "[ -f x ]", 0, Word("[")),
    ("test-bracket-close", "[ -f x ]", 3, Word("]")),
    ("lone-open-bracket", "echo [", 1, Word("[")),
    ("empty-quotes", "echo ''", 1, Word("")),
]


@pytest.mark.parametrize(
    ("line", "index", "expected"), [row[1:] for row in KINDS], ids=[row[0] for row in KINDS]
)
def test_word_kinds(line: str, index: int, expected: Word) -> None:
    assert parse_ok(line).commands[-1].argv[index] == expected


@pytest.mark.parametrize(
    ("line", "program"),
    [
        ("/bin/rm -rf x", Word("rm")),
        ("./script.sh", Word("script.sh")),
        ("[ -f x ]", Word("[")),
        ("$CMD x", Word("$CMD", "unknown")),
        ("X=1", None),
    ],
    ids=["abs", "relative", "test-bracket", "unknown", "assignment"],
)
def test_program(line: str, program: Word | None) -> None:
    assert parse_ok(line).commands[-1].program == program


# -- what cannot be parsed --------------------------------------------------------------

UNPARSEABLE = [
    ("unterminated-single", "echo 'abc"),
    ("unterminated-double", 'echo "abc'),
    ("trailing-and", "ls &&"),
    ("trailing-or", "ls ||"),
    ("trailing-pipe", "ls |"),
    ("leading-and", "&& ls"),
    ("double-semicolon", "echo a;; echo b"),
    ("case", "case x in a) rm x;; esac"),
    ("lone-paren", "("),
    ("stray-close-paren", "ls )"),
    ("lone-if", "if"),
    ("nul-byte", "ls\x00"),
    ("oversize", "a" * (MAX_LINE + 1)),
    ("empty", ""),
    ("blank", " \t "),
    ("newline-only", "\n"),
    ("comment-only", "# nothing"),
    ("bash-c-computed", 'bash -c "$X"'),
    ("bash-c-missing-script", "bash -c"),
    ("eval-computed", 'eval "$X"'),
    ("env-split-computed", "env -S $X"),
    ("find-exec-without-command", "find . -exec"),
    ("unterminated-heredoc", "cat <<EOF\nhello"),
]


@pytest.mark.parametrize(
    "line", [row[1] for row in UNPARSEABLE], ids=[row[0] for row in UNPARSEABLE]
)
def test_unparseable(line: str) -> None:
    parsed = parse_command_line(line)
    assert not parsed.ok
    assert isinstance(parsed.error, str)
    assert parsed.error
    assert parsed.commands == ()
    assert parsed.parser == "none"


def test_longest_line_is_parsed() -> None:
    line = "echo " + "a" * (MAX_LINE - len("echo "))
    assert parse_ok(line).parser == "lexer"


# -- wrappers and expansions must not hide what runs --------------------------------------


def test_env_dash_runs_the_command() -> None:
    # "env -" is "env -i": the command after it runs (GNU env).
    assert (["rm", "-rf", "/"], ("env",)) in shape(parse_ok("env - rm -rf /"))


def test_sudo_k_with_a_command_runs_it() -> None:
    # "sudo -k CMD" drops cached credentials and then runs CMD; only "sudo -k" alone does not.
    assert (["rm", "-rf", "/"], ("sudo",)) in shape(parse_ok("sudo -k rm -rf /"))


@pytest.mark.parametrize(
    "line",
    ["sudo FOO=1 rm -rf /", "time X=1 rm -rf /"],
    ids=["sudo", "time"],
)
def test_assignments_after_a_wrapper_are_not_the_program(line: str) -> None:
    programs = [c.program for c in parse_ok(line).commands]
    assert Word("rm") in programs


@pytest.mark.parametrize(
    ("line", "text"),
    [("cat $HOMEDIR/x", "$HOMEDIR/x"), ("cat ${HOME}x", "${HOME}x")],
    ids=["longer-name", "braced-then-letters"],
)
def test_home_prefix_is_not_another_variable(line: str, text: str) -> None:
    (command,) = parse_ok(line).commands
    assert command.argv[1].kind == "unknown", f"{text} is read as {command.argv[1]}"


def test_heredoc_body_substitution_runs() -> None:
    # An unquoted here-document delimiter lets the body's $(...) run.
    parsed = parse_command_line("cat <<EOF\n$(rm -rf /)\nEOF")
    assert not parsed.ok or ["rm", "-rf", "/"] in [argv for argv, _ in shape(parsed)]


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("cat '.e''nv' $X", ".env"),
        ("cat '.e'nv'' $X", ".env"),
        ("cat 'a'\"b\"'c' $X", "abc"),
        ('cat "a"\'b\'"c" $X', "abc"),
        ("cat '''' $X", ""),
        ("cat 'x\"y' $X", 'x"y'),
        ('cat "x\'y" $X', "x'y"),
        ("cat 'a\\b' $X", "a\\b"),
        ("cat a'\"b' $X", 'a"b'),
        ('cat a"b\'c" $X', "ab'c"),
        ("cat x'a\\b' $X", "xa\\b"),
    ],
    ids=[
        "single-single",
        "single-plain-single",
        "single-double-single",
        "double-single",
        "empty",
        "double-inside-single",
        "single-inside-double",
        "backslash-inside-single",
        "plain-then-single-with-double",
        "plain-then-double-with-single",
        "plain-then-single-with-backslash",
    ],
)
def test_quotes_are_removed_on_the_bashlex_path(line: str, text: str) -> None:
    # "$X" sends the line to bashlex; the shell runs "cat .env" for the first line.
    parsed = parse_ok(line)
    assert parsed.parser == "bashlex"
    assert parsed.commands[0].argv[1] == Word(text)


# -- the lexer agrees with bashlex --------------------------------------------------------

AGREE = [
    ("plain", "git commit -m 'fix: a; b' && git push origin HEAD"),
    ("redirections", "ls -la > out.txt 2>&1 < in"),
    ("stderr-append", "make 2>> err.log"),
    ("both", "make &> log"),
    ("globs", "rm -f *.pyc a?b [ab]c"),
    ("tilde", "cat ~/x ~"),
    ("wrappers", "sudo -u root nohup nice -n 5 rm -rf /tmp/x"),
    ("bash-c", "bash -c 'cat a | wc -l'"),
    ("background", "sleep 1 & ls"),
    ("empty-word", "echo '' \"\""),
    ("test-bracket", "[ -f x ]"),
    ("digit-word-then-redirect", "ls 2 > f"),
    ("empty-brackets", "ls []"),
    ("adjacent-single-quotes", "cat '.e''nv'"),
    ("double-then-single-empty", "echo \"\"''"),
    ("single-quoted-dollar", "echo '$'"),
    ("quote-inside-other-quotes", "echo a'\"b' \"c'd\""),
]


@pytest.mark.parametrize(
    ("line", "argv", "redirect"),
    [
        ("ls 10>f", ["ls"], (">", "f")),
        ("echo hi >&2x", ["echo", "hi"], (">", "2x")),
    ],
    ids=["wide-fd", "dup-then-letters"],
)
def test_lexer_defers_what_it_would_misread(
    line: str, argv: list[str], redirect: tuple[str, str]
) -> None:
    parsed = parse_command_line(line)
    assert parsed.parser == "bashlex"
    (command,) = parsed.commands
    assert [w.text for w in command.argv] == argv
    assert [(r.op, r.target.text) for r in command.redirects] == [redirect]


@pytest.mark.parametrize("line", [row[1] for row in AGREE], ids=[row[0] for row in AGREE])
def test_lexer_agrees_with_bashlex(line: str) -> None:
    fast = parse_command_line(line)
    slow = parse_command_line(line, force_bashlex=True)
    assert fast.parser == "lexer"
    assert slow.parser == "bashlex"
    assert fast.commands == slow.commands


RESERVED = words(
    "if then else elif fi case esac for select while until do done in function coproc time"
)
PROGRAMS = st.sampled_from(
    ["ls", "git", "rm", "cat", "sudo", "env", "nohup", "xargs", "timeout", "nice", "command"]
)
PLAIN = st.text(alphabet=string.ascii_letters + string.digits + "_./-", min_size=1, max_size=8)
QUOTABLE = "".join(c for c in string.printable if c not in "\n\r\x0b\x0c$`\\!")
SINGLE = st.text(alphabet=QUOTABLE.replace("'", ""), max_size=6).map(lambda s: f"'{s}'")
DOUBLE = st.text(alphabet=QUOTABLE.replace('"', ""), max_size=6).map(lambda s: f'"{s}"')
WORD = st.lists(st.one_of(PLAIN, SINGLE, DOUBLE), min_size=1, max_size=3).map("".join)
FIRST = st.one_of(PROGRAMS, PLAIN.filter(lambda w: w not in RESERVED))
REDIRECT = st.sampled_from(["> out", "2>&1", "< in.txt", ">> log", "2> err"])
COMMAND = st.builds(
    lambda first, rest: " ".join([first, *rest]),
    FIRST,
    st.lists(st.one_of(WORD, REDIRECT), max_size=5),
)
SEPARATOR = st.sampled_from([" ; ", " && ", " || ", " | ", ";", "&&", "||", "|"])


@st.composite
def plain_lines(draw: st.DrawFn) -> str:
    commands = draw(st.lists(COMMAND, min_size=1, max_size=4))
    line = commands[0]
    for command in commands[1:]:
        line += draw(SEPARATOR) + command
    return line


@PROPERTY
@given(plain_lines())
@example("ls -l | grep 'a b' > out 2>&1")
@example('sudo -u root rm -rf / && echo "done; ok"')
@example("cat '.e''nv'")
def test_lexer_and_bashlex_agree_on_the_plain_subset(line: str) -> None:
    fast = parse_command_line(line)
    assert fast.ok, fast.error
    assert fast.parser == "lexer"
    slow = parse_command_line(line, force_bashlex=True)
    if slow.ok:
        assert fast.commands == slow.commands


# -- never raises -----------------------------------------------------------------------

SHELLISH = st.text(alphabet=string.printable + "\x00\x01\x1b\u00e9\u2028", max_size=40)


@PROPERTY
@given(st.text() | SHELLISH)
@example("\x00")
@example("$((")
@example("cat <<EOF")
@example("# comment")
@example(":(){ :|:& };:")
def test_never_raises(line: str) -> None:
    parsed = parse_command_line(line)
    if parsed.ok:
        assert parsed.commands
        assert parsed.parser in ("lexer", "bashlex")
        assert all(isinstance(c, SimpleCommand) for c in parsed.commands)
    else:
        assert isinstance(parsed.error, str)
        assert parsed.error
        assert parsed.commands == ()
