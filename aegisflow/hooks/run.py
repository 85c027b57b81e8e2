"""``aegisctl hook <agent>``: one tool call in, AegisFlow's decision out. Fails closed.

The agent runs this before each built-in tool call with the call as JSON on stdin. The
call is evaluated by the service (``POST /v1/actions`` with ``mode: evaluate``: the agent
runs the tool itself) and the answer is printed in the agent's format. Anything that
stops the call from being checked (no key, the service unreachable, slow or answering
nonsense, unreadable stdin, a tool AegisFlow does not know) exits with code 2 and the
reason on stderr, which every agent treats as "do not run the tool". After the call ran,
Claude Code and Codex run the hook again (PostToolUse) and the result is recorded.
"""

from __future__ import annotations

import json
import os
import sys

from aegisflow.hooks.agents import AGENTS, Answer, HookError
from aegisflow.hooks.wire import WireError, post_json

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the hook 3 ms

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, BinaryIO

    from aegisflow.hooks.agents import Agent, Call, Outcome

DEFAULT_URL = "http://127.0.0.1:8081"
DEFAULT_TIMEOUT = 5.0
"""Seconds for the service to answer: well under every agent's own hook timeout, which
would otherwise let the tool run (agents fail open on a hook timeout)."""
MAX_TIMEOUT = 10.0
"""Well under the 30 s the installed hook entry gives it: a hook that times out lets the
tool run in every agent. (Name resolution is not under this deadline: use an address or
a name the system resolves locally.)"""
MAX_PAYLOAD = 32 << 20
USAGE = (
    "usage: aegisctl hook AGENT [--server URL] [--key-file PATH] [--timeout SECONDS]"
    " [--on-review deny|ask|defer]"
)


class Options:
    __slots__ = ("api_key", "on_review", "server", "timeout")

    def __init__(self, server: str, api_key: str, timeout: float, on_review: str) -> None:
        self.server = server
        self.api_key = api_key
        self.timeout = timeout
        self.on_review = on_review


def main(agent_name: str, argv: list[str], stdin: BinaryIO | None = None) -> int:
    """Answer one hook call; return the exit code (0 answered, 2 refused)."""
    try:
        out, code = answer(agent_name, argv, stdin if stdin is not None else sys.stdin.buffer)
    except (HookError, WireError) as e:
        return refuse(str(e))
    except Exception as e:  # noqa: BLE001 - fail closed, never a traceback
        return refuse(f"unexpected {type(e).__name__} in the AegisFlow hook")
    if out:
        sys.stdout.write(out + "\n")
        sys.stdout.flush()
    return code


def answer(agent_name: str, argv: list[str], stdin: BinaryIO) -> tuple[str, int]:
    """The hook's output and exit code for the payload on ``stdin``.

    Raises:
        HookError, WireError: If the call cannot be checked.
    """
    agent = AGENTS.get(agent_name)
    if agent is None:
        raise HookError(f"unknown agent {agent_name!r}; one of {', '.join(AGENTS)}")
    options = parse_options(argv)
    payload = read_payload(stdin)
    if payload.get("hook_event_name") == "PostToolUse" and agent.post is not None:
        outcome = agent.post(payload, agent.name)
        if outcome is not None:
            report(outcome, options)
        return "", 0
    call = agent.pre(payload, agent.name)
    if call is None:  # a tool that acts only inside the agent: no opinion
        return "", 0
    if options.on_review not in agent.reviews:
        raise HookError(
            f"{agent.name} cannot {options.on_review} from a hook; --on-review is one of "
            + ", ".join(agent.reviews)
        )
    return agent.answer(decide(call, agent, options))


def refuse(why: str) -> int:
    sys.stderr.write(f"AegisFlow could not check this call, so it was not run: {why}\n")
    sys.stderr.flush()
    return 2


def parse_options(argv: list[str]) -> Options:
    """Options from the command line, then the environment.

    Raises:
        HookError: On an unknown or malformed option, or no API key.
    """
    given: dict[str, str] = {}
    names = {"--server", "--key-file", "--timeout", "--on-review"}
    args = iter(argv)
    for arg in args:
        name, eq, value = arg.partition("=")
        if name not in names:
            raise HookError(f"unknown option {arg!r}; {USAGE}")
        given[name] = value if eq else next(args, "")
    server = given.get("--server") or os.environ.get("AEGISFLOW_URL") or DEFAULT_URL
    timeout_text = given.get("--timeout") or os.environ.get("AEGISFLOW_HOOK_TIMEOUT") or ""
    try:
        timeout = float(timeout_text) if timeout_text else DEFAULT_TIMEOUT
    except ValueError:
        raise HookError(f"--timeout must be a number of seconds, not {timeout_text!r}") from None
    if not 0 < timeout <= MAX_TIMEOUT:
        raise HookError(f"--timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds")
    on_review = given.get("--on-review") or "deny"
    if on_review not in ("deny", "ask", "defer"):
        raise HookError(f"--on-review must be deny, ask or defer, not {on_review!r}")
    return Options(server.rstrip("/"), _api_key(given.get("--key-file")), timeout, on_review)


def _api_key(key_file: str | None) -> str:
    key_file = key_file or os.environ.get("AEGISFLOW_API_KEY_FILE")
    if key_file:
        try:
            with open(os.path.expanduser(key_file), encoding="utf-8") as f:
                key = f.read().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise HookError(f"cannot read the API key file {key_file}: {e}") from None
    else:
        key = os.environ.get("AEGISFLOW_API_KEY", "").strip()
    if not key or not key.isprintable() or " " in key:
        raise HookError("no API key: set AEGISFLOW_API_KEY or AEGISFLOW_API_KEY_FILE")
    return key


def read_payload(stream: BinaryIO) -> Mapping[str, Any]:
    """The hook's JSON object from ``stream``.

    Raises:
        HookError: If it is larger than :data:`MAX_PAYLOAD`, not JSON, or not an object.
    """
    data = stream.read(MAX_PAYLOAD + 1)
    if len(data) > MAX_PAYLOAD:
        raise HookError(f"the hook input is larger than {MAX_PAYLOAD >> 20} MiB")
    try:
        payload = json.loads(data)
    except ValueError:
        raise HookError("the hook input is not JSON") from None
    if not isinstance(payload, dict):
        raise HookError("the hook input is not a JSON object")
    return payload


def decide(call: Call, agent: Agent, options: Options) -> Answer:
    """Ask the service; its decision as the agent's answer.

    Raises:
        HookError, WireError: If the service did not decide.
    """
    body = {**call.action, "mode": "evaluate", "actor": {"agent": agent.name}}
    if call.call_id is not None:
        body["call_id"] = call.call_id
    status, reply = post_json(
        options.server,
        "/v1/actions",
        body,
        headers=_headers(options, call.session),
        timeout=options.timeout,
    )
    decision = reply.get("decision") if isinstance(reply, dict) else None
    if status != 200 or decision not in ("allow", "block", "review"):
        raise HookError(_refusal(status, reply))
    if decision == "allow":
        return Answer("allow", f"AegisFlow allowed this call ({reply.get('matched_rule')}).")
    error = reply.get("error")
    data = error.get("data") if isinstance(error, dict) else None
    data = data if isinstance(data, dict) else {}
    if decision == "block":
        return Answer("deny", blocked_message(error, data))
    return Answer(options.on_review, review_message(reply, data, options))


def blocked_message(error: object, data: Mapping[str, Any]) -> str:
    what = error.get("message") if isinstance(error, dict) else None
    text = f"AegisFlow blocked this call ({what or 'policy'})"
    if data.get("reason"):
        text += f": {data['reason']}"
    text += "."
    if data.get("suggested_alternative"):
        text += f" Instead: {data['suggested_alternative']}."
    return text + " Do not retry it unchanged: it will be blocked again."


def review_message(answer: Mapping[str, Any], data: Mapping[str, Any], options: Options) -> str:
    ids = data.get("approval_ids") or [answer.get("envelope_id")]
    listed = ", ".join(str(i) for i in ids)
    approve = " and ".join(f"`aegisctl approve {i}`" for i in ids)
    text = (
        f"AegisFlow needs a human to approve this call first (approval {listed}); it was not "
        f"run. A reviewer approves with {approve} or at {data.get('approval_url', 'the service')}. "
        "After approval, retry exactly the same call: it is then allowed once."
    )
    if options.on_review == "ask":
        text += " Approving it here instead runs it without an AegisFlow approval."
    elif options.on_review == "defer":
        text += " The call is deferred: resume this run after the approval to retry it."
    return text


def report(outcome: Outcome, options: Options) -> None:
    """Record what the call returned (PostToolUse).

    Raises:
        HookError, WireError: If the service did not record it.
    """
    from urllib.parse import quote  # noqa: PLC0415 - only after a call ran

    status, reply = post_json(
        options.server,
        f"/v1/calls/{quote(outcome.call_id, safe='')}/result",
        outcome.report,
        headers=_headers(options, outcome.session),
        timeout=options.timeout,
    )
    if status != 200:
        raise HookError(f"the result was not recorded: {_refusal(status, reply)}")


def _headers(options: Options, session: str) -> dict[str, str]:
    return {"X-API-Key": options.api_key, "X-AegisFlow-Session": session}


def _refusal(status: int, answer: object) -> str:
    error = answer.get("error") if isinstance(answer, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(message, str):
        return f"the governance service refused it ({status}): {message[:500]}"
    return f"the governance service answered {status} without a decision"
