"""Properties of the shell-aware policy: generated command lines that hide a blocked
program anywhere (behind wrappers, separators, substitutions, quoting tricks) are never
allowed by pr-writer, and no input crashes normalization or evaluation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import ACTOR, counter_ids, pack

from aegisflow.policy.normalize import shell_envelopes

# Programs pr-writer blocks outright (a rule with no conditions), whatever their arguments.
BLOCKED = ["rm", "rmdir", "unlink", "shred", "truncate", "dd", "mkfs.ext4", "shutdown",
           "reboot", "chown", "sudo", "printenv", "crontab", "twine"]  # fmt: skip
ARGS = ["-rf", "-f", "x", "/", "build", "'a b'", '"c"', "--", "-r", "/workspace", "*.pyc"]
BENIGN = ["ls", "echo hi", "true", "git status", "pytest -q", "cat README.md"]


def spelled(program: str) -> st.SearchStrategy[str]:
    """The program name as typed: plain, quoted, escaped or as an absolute path."""
    variants = [program, f'"{program}"', f"'{program}'", f"/bin/{program}", f"/usr/bin/{program}"]
    if len(program) > 1:
        variants.append(f"{program[0]}''{program[1:]}")
        variants.append("\\" + program)
    return st.sampled_from(variants)


@st.composite
def simple(draw: st.DrawFn) -> str:
    program = draw(st.sampled_from(BLOCKED))
    args = draw(st.lists(st.sampled_from(ARGS), max_size=3))
    return " ".join([draw(spelled(program)), *args])


WRAPPERS = ["sudo ", "env X=1 ", "env -i ", "nohup ", "nice -n 5 ", "timeout 5 ", "time ",
            "command ", "exec ", "xargs ", "stdbuf -oL ", "setsid "]  # fmt: skip


def wrap(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def combine(draw_inner: str, how: int, benign: str, wrapper: str) -> str:
        forms = [
            f"{wrapper}{draw_inner}",
            f"{benign}; {draw_inner}",
            f"{benign} && {draw_inner}",
            f"false || {draw_inner}",
            f"{benign} | {draw_inner}",
            f"{draw_inner} | cat",
            f"({draw_inner})",
            f"{{ {draw_inner}; }}",
            f"echo $({draw_inner})",
            f"if true; then {draw_inner}; fi",
            f"for f in a b; do {draw_inner}; done",
            f"cat <({draw_inner})",
            f"{draw_inner} &",
        ]
        if "'" not in draw_inner:
            forms.append(f"bash -c '{draw_inner}'")
            forms.append(f"sh -lc '{draw_inner}'")
            forms.append(f"eval '{draw_inner}'")
        if not any(c in draw_inner for c in '"$`\\'):
            forms.append(f'sh -c "{draw_inner}"')
        if "`" not in draw_inner and "$(" not in draw_inner and "<(" not in draw_inner:
            forms.append(f"echo `{draw_inner}`")
        return forms[how % len(forms)]

    return st.builds(
        combine,
        inner,
        st.integers(min_value=0, max_value=100),
        st.sampled_from(BENIGN),
        st.sampled_from(WRAPPERS),
    )


hidden_blocked = st.recursive(simple(), wrap, max_leaves=3)


@settings(max_examples=400, deadline=None)
@given(hidden_blocked)
def test_a_hidden_blocked_program_is_never_allowed(line: str) -> None:
    envelopes = shell_envelopes(line, actor=ACTOR, cwd="/workspace", new_id=counter_ids())  # type: ignore[arg-type]
    envelope, decision = pack("pr-writer").evaluate_all(envelopes).deciding
    assert decision.decision != "allow", (line, envelope.tool, decision.matched_rule)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_normalizes_and_evaluates(line: str) -> None:
    envelopes = shell_envelopes(line, actor=ACTOR, cwd="/workspace", new_id=counter_ids())  # type: ignore[arg-type]
    assert envelopes
    verdict = pack("pr-writer").evaluate_all(envelopes)
    for envelope, decision in verdict.items:
        if envelope.tool == "shell.unparseable" or 0 in envelope.parameters.get("unknown", ()):
            assert decision.decision != "allow"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("rm -f;|&$()`'\"\\<>{}*?~/.ab\n\t")), max_size=60))
def test_shell_punctuation_soup_never_crashes(line: str) -> None:
    envelopes = shell_envelopes(line, actor=ACTOR, cwd="/workspace", new_id=counter_ids())  # type: ignore[arg-type]
    pack("pr-writer").evaluate_all(envelopes)
