"""A faithful stdio proxy in front of one MCP server, with every ``tools/call`` governed.

The agent talks newline-delimited JSON-RPC to this proxy as if it were the server. Lines
are relayed as they are, byte for byte, in both directions (requests, responses,
notifications, server-to-client requests such as sampling, elicitation and roots), so
fields this proxy does not know survive. Only three things are looked at:

* ``initialize``: the client's name becomes the actor's agent (``claude-code``);
* ``tools/call``: the call becomes an envelope and the service decides. Allow forwards
  the original line; block answers ``-32001`` and review ``-32002``, with a message that
  alone tells the model what happened and what to do (clients show only the message). A
  call retried unchanged after a human approved it carries the approval (single use);
* responses to forwarded calls: their digest, size and outcome are reported to the
  service as the call's ``result`` entry.

It fails closed: if the service cannot be asked, the call is refused and the upstream
never sees it. If the upstream exits, calls still waiting get an error, not a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aegisflow.envelope import Actor, InvalidAction
from aegisflow.errors import AegisError
from aegisflow.mcp.service import Service, ServiceUnavailable
from aegisflow.policy.normalize import McpServer, mcp_envelope

BLOCK_CODE = -32001
REVIEW_CODE = -32002
UNCHECKED_CODE = -32003
"""The call could not be checked (service down, malformed call): it was not run."""
UPSTREAM_CODE = -32004
"""The upstream server went away before answering."""
RESULT_LINGER = 0.05
"""Seconds results wait to be reported together."""
MAX_REPORTS = 256
"""Results in one report to the service (its ``POST /v1/results`` limit)."""
MAX_LINE = 16 << 20
"""The longest message relayed either way, in bytes."""

log = logging.getLogger("aegisflow.mcp")

Send = Callable[[bytes], Awaitable[None]]
SendUpstream = Callable[[bytes, Mapping[str, str] | None], Awaitable[None]]
"""Send a line upstream, with headers for that call alone where the transport has them."""


@dataclass
class _Pending:
    """A request forwarded upstream, until its response comes back or time runs out."""

    method: str
    envelope_id: str | None
    """For an allowed ``tools/call``: the envelope whose result is reported."""
    timer: asyncio.TimerHandle | None = None


@dataclass
class Proxy:
    """One agent connection, one upstream server, one session."""

    server: McpServer
    service: Service
    session: str
    to_agent: Send
    to_upstream: SendUpstream
    agent: str = "mcp-client"
    call_timeout: float = 300.0
    """Seconds the upstream has to answer a forwarded request before the agent is told."""
    refusals_as_results: bool = False
    """Answer blocks and reviews as tool results with ``isError`` instead of errors."""
    _deciding: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _forwarded: dict[str, _Pending] = field(default_factory=dict)
    _approved: dict[str, str] = field(default_factory=dict)
    """Canonical call -> the id of its review, so an unchanged retry carries the approval."""
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _handshake: list[dict[str, Any]] = field(default_factory=list)
    """The agent's ``initialize`` and ``notifications/initialized``, for a restarted server."""
    _replaying: str | None = None
    """The id of a replayed ``initialize``, whose answer is not the agent's."""
    _results: list[dict[str, Any]] = field(default_factory=list)
    _flusher: asyncio.Task[None] | None = None
    """Waiting out the linger; the report it then sends is one of ``_tasks``."""
    _closing: bool = False

    # -- agent to upstream ----------------------------------------------------------

    async def from_agent(self, line: bytes) -> None:
        message = _parse(line)
        if isinstance(message, list):
            await self._reply_error(None, -32600, "JSON-RPC batches are not supported by MCP")
            return
        if not isinstance(message, dict):
            await self._reply_error(None, -32700, "not a JSON-RPC message")
            return
        method = message.get("method")
        if method == "initialize":
            self._note_client(message.get("params"))
            self._handshake = [message]
        elif method == "notifications/initialized":
            self._handshake = [*self._handshake[:1], message]
        elif method == "tools/call" and "id" in message:
            key = _id_key(message["id"])
            task = asyncio.create_task(self._govern(message, line))
            self._deciding[key] = task

            def settled(_task: asyncio.Task[None], key: str = key) -> None:
                self._deciding.pop(key, None)

            task.add_done_callback(settled)
            return
        elif method == "notifications/cancelled" and self._cancel_deciding(message):
            return  # cancelled before it reached the upstream: nothing to tell it
        if isinstance(method, str) and "id" in message:
            self._track(message["id"], method, None)
        await self.to_upstream(line, None)

    async def agent_oversized(self) -> None:
        await self._reply_error(None, -32600, "message too large: it was not forwarded")

    async def upstream_oversized(self) -> None:
        log.warning("dropped a message from the MCP server larger than the line limit")

    async def replay_handshake(self) -> None:
        """Initialize a restarted server as the agent did; its answer goes nowhere."""
        if not self._handshake:
            return
        initialize = {**self._handshake[0], "id": f"aegisflow-restart-{id(self)}"}
        self._replaying = _id_key(initialize["id"])
        await self.to_upstream(json.dumps(initialize).encode() + b"\n", None)

    def _note_client(self, params: object) -> None:
        info = params.get("clientInfo") if isinstance(params, Mapping) else None
        name = info.get("name") if isinstance(info, Mapping) else None
        if isinstance(name, str):
            safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in name)
            safe = safe.lstrip("._-")[:64]
            if safe:
                self.agent = safe

    def _cancel_deciding(self, message: Mapping[str, Any]) -> bool:
        params = message.get("params")
        request = params.get("requestId") if isinstance(params, Mapping) else None
        task = self._deciding.pop(_id_key(request), None)
        if task is None:
            return False
        task.cancel()
        return True

    async def _govern(self, message: dict[str, Any], line: bytes) -> None:
        request_id = message["id"]
        params = message.get("params")
        try:
            envelope = mcp_envelope(
                self.server,
                params,
                actor=Actor(agent=self.agent, session=self.session, principal=self.agent),
            )
        except (InvalidAction, AegisError) as e:
            await self._reply_error(
                request_id, UNCHECKED_CODE, f"AegisFlow could not check this call: {e.message}"
            )
            return
        call_key = _canonical([envelope.tool, envelope.target, dict(envelope.parameters)])
        action: dict[str, Any] = {
            "protocol": envelope.protocol,
            "tool": envelope.tool,
            "target": envelope.target,
            "capability": envelope.capability,
            "parameters": dict(envelope.parameters),
            "actor": {"agent": self.agent},
        }
        ref = self._approved.get(call_key)
        if ref is not None:
            action["approval_ref"] = ref
        try:
            answer = await self.service.decide(action)
        except ServiceUnavailable as e:
            await self._reply_error(
                request_id,
                UNCHECKED_CODE,
                f"AegisFlow could not check this call, so it was not run: {e.message}. "
                "Try again later.",
            )
            return
        if answer.get("refused"):
            error = answer["error"]
            await self._reply_error(
                request_id,
                UNCHECKED_CODE,
                f"AegisFlow refused this call as malformed, so it was not run: "
                f"{error.get('message')}",
            )
            return
        decision = answer["decision"]
        if decision == "allow":
            self._approved.pop(call_key, None)
            self._track(request_id, "tools/call", answer["envelope_id"])
            await self.to_upstream(line, _credential_headers(answer))
        elif decision == "review":
            self._approved[call_key] = answer["envelope_id"]
            await self._refuse(
                request_id, REVIEW_CODE, _review_message(envelope.tool, answer), answer
            )
        else:
            if ref is not None and "still pending" not in _reason(answer):
                self._approved.pop(call_key, None)  # denied, expired or used: ask anew
            await self._refuse(
                request_id, BLOCK_CODE, _block_message(envelope.tool, answer, ref), answer
            )

    async def _refuse(
        self, request_id: object, code: int, message: str, answer: Mapping[str, Any]
    ) -> None:
        """A block or review: a JSON-RPC error, or a tool result with ``isError`` for
        servers configured so (some clients show the model tool results, not errors)."""
        if not self.refusals_as_results:
            await self._reply_error(request_id, code, message, answer)
            return
        result = {
            "content": [{"type": "text", "text": message}],
            "isError": True,
            "_meta": {"aegisflow": {"code": code, **self._details(answer)}},
        }
        reply = {"jsonrpc": "2.0", "id": request_id, "result": result}
        await self.to_agent(json.dumps(reply, separators=(",", ":")).encode() + b"\n")

    # -- upstream to agent ----------------------------------------------------------

    def _track(self, request_id: object, method: str, envelope_id: str | None) -> None:
        key = _id_key(request_id)
        pending = _Pending(method, envelope_id)
        pending.timer = asyncio.get_running_loop().call_later(
            self.call_timeout, lambda: self._spawn(self._expire(key, request_id))
        )
        self._forwarded[key] = pending

    def _settle(self, key: str) -> _Pending | None:
        pending = self._forwarded.pop(key, None)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()
        return pending

    async def _expire(self, key: str, request_id: object) -> None:
        pending = self._settle(key)
        if pending is None:
            return
        await self._reply_error(
            request_id,
            UPSTREAM_CODE,
            f"the MCP server did not answer {pending.method} within {self.call_timeout:g} s; "
            "its outcome is unknown. Check before retrying.",
        )
        if pending.envelope_id is not None:
            await self._report(pending.envelope_id, "timeout", b"", 0, failed=True)

    async def from_upstream(self, line: bytes) -> None:
        message = _parse(line)
        if not isinstance(message, dict):
            # Not a JSON-RPC message: passing it on would break the agent's stream.
            log.warning("dropped a line from the MCP server that is not a JSON-RPC message")
            return
        if "method" not in message and "id" in message:
            if _id_key(message["id"]) == self._replaying:
                self._replaying = None
                for notification in self._handshake[1:]:
                    await self.to_upstream(json.dumps(notification).encode() + b"\n", None)
                return
            pending = self._settle(_id_key(message["id"]))
            if pending is None:
                return  # an answer to nothing outstanding (expired, or never asked): drop it
            if pending.method == "tools/list":
                self._spawn(self._filtered_tools(message, line))
                return
            if pending.envelope_id is not None:
                result = message.get("result")
                failed = "error" in message or (
                    isinstance(result, Mapping) and bool(result.get("isError"))
                )
                body = _canonical(message.get("result", message.get("error"))).encode()
                summary = "error" if failed else "ok"
                self._spawn(
                    self._report(pending.envelope_id, summary, body, len(line), failed=failed)
                )
        await self.to_agent(line)

    async def _filtered_tools(self, message: dict[str, Any], line: bytes) -> None:
        """Pass on a ``tools/list`` answer without the tools the policy always blocks.

        Hiding is a courtesy to the model (a blocked call is refused anyway), so if the
        service cannot say, the list goes out as it came.
        """
        result = message.get("result")
        tools = result.get("tools") if isinstance(result, dict) else None
        if not isinstance(result, dict) or not isinstance(tools, list):
            await self.to_agent(line)
            return
        prefix = f"{self.server.name}."
        names = [t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]
        try:
            hidden = await self.service.hidden([prefix + n for n in names])
        except (ServiceUnavailable, AegisError) as e:
            log.warning("tools/list passed on unfiltered: %s", e.message)
            await self.to_agent(line)
            return
        if not hidden:
            await self.to_agent(line)
            return
        result["tools"] = [
            t for t in tools if not (isinstance(t, dict) and prefix + str(t.get("name")) in hidden)
        ]
        await self.to_agent(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    async def _report(
        self, envelope_id: str, summary: str, body: bytes, size: int, *, failed: bool
    ) -> None:
        report = {
            "envelope_id": envelope_id,
            "summary": summary,
            "result_sha256": hashlib.sha256(body).hexdigest(),
            "size": size,
            "is_error": failed,
        }
        self._results.append(report)
        if self._flusher is None and not self._closing:
            self._flusher = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        """Report results a moment later, together: off the path of the next decision,
        and into one group commit of the ledger instead of one each."""
        await asyncio.sleep(RESULT_LINGER)
        self._flusher = None
        self._spawn(self._flush())  # tracked, so that close() waits for it

    async def _flush(self) -> None:
        batch, self._results = self._results, []
        for start in range(0, len(batch), MAX_REPORTS):
            await self._send_results(batch[start : start + MAX_REPORTS])

    async def _send_results(self, batch: list[dict[str, Any]]) -> None:
        try:
            refused = await self.service.record_results(batch)
        except ServiceUnavailable as e:
            ids = ", ".join(r["envelope_id"] for r in batch)
            log.warning("results not recorded (%s): %s", e.message, ids)
            return
        for line in refused:
            log.warning("result not recorded: %s", line)

    async def upstream_gone(self, why: str) -> None:
        """Answer every request the upstream will now never answer."""
        for key in list(self._forwarded):
            pending = self._settle(key)
            if pending is None:
                continue
            await self._reply_error(
                json.loads(key),
                UPSTREAM_CODE,
                f"the MCP server stopped ({why}) before answering {pending.method}; its "
                "outcome is unknown. Check before retrying.",
            )
            if pending.envelope_id is not None:
                await self._report(pending.envelope_id, "upstream-stopped", b"", 0, failed=True)

    async def close(self) -> None:
        """Stop deciding; report every result still owed, including reports already on
        their way (evidence is not dropped, and no request outlives the service client)."""
        self._closing = True
        deciding = list(self._deciding.values())
        for task in deciding:
            task.cancel()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await asyncio.gather(*deciding, return_exceptions=True)
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._flush()

    # -- plumbing -------------------------------------------------------------------

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _details(answer: Mapping[str, Any]) -> dict[str, Any]:
        data = dict(answer.get("error", {}).get("data", {}))
        data["envelope_id"] = answer.get("envelope_id")
        data["matched_rule"] = answer.get("matched_rule")
        return data

    async def _reply_error(
        self,
        request_id: object,
        code: int,
        message: str,
        answer: Mapping[str, Any] | None = None,
    ) -> None:
        error: dict[str, Any] = {"code": code, "message": message}
        if answer is not None:
            error["data"] = self._details(answer)
        reply = {"jsonrpc": "2.0", "id": request_id, "error": error}
        await self.to_agent(json.dumps(reply, separators=(",", ":")).encode() + b"\n")


def _credential_headers(answer: Mapping[str, Any]) -> dict[str, str] | None:
    """The credential the rule delivered for this call, as the upstream's HTTP auth."""
    credential = answer.get("credential")
    token = credential.get("token") if isinstance(credential, Mapping) else None
    if not isinstance(token, str) or not token:
        return None
    return {"Authorization": f"Bearer {token}"}


def _review_message(tool: str, answer: Mapping[str, Any]) -> str:
    data = answer.get("error", {}).get("data", {})
    queued = data.get("queued_at")
    return (
        f"AegisFlow: {tool} needs a human's approval before it runs (approval "
        f"{answer['envelope_id']}{f', queued {queued}' if queued else ''}). A reviewer has "
        "been asked. Retry exactly the same call after it is approved; until then, "
        "continue with other work."
    )


def _reason(answer: Mapping[str, Any]) -> str:
    return str(answer.get("error", {}).get("data", {}).get("reason") or "")


def _block_message(tool: str, answer: Mapping[str, Any], ref: str | None) -> str:
    data = answer.get("error", {}).get("data", {})
    reason = data.get("reason") or "the policy does not allow it"
    if answer.get("matched_rule") == "approval-refused" and ref is not None:
        return (
            f"AegisFlow did not run {tool}: its approval {ref} cannot be used ({reason}). "
            "If it is still pending, retry after a reviewer approves it."
        )
    text = f"AegisFlow blocked {tool} (policy error -32001, not a timeout): {reason}."
    alternative = data.get("suggested_alternative")
    if alternative:
        text += f" Instead: {alternative}."
    return text + " Do not retry this call unchanged."


def _parse(line: bytes) -> object:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _id_key(request_id: object) -> str:
    return json.dumps(request_id, sort_keys=True)


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


async def relay_lines(
    reader: asyncio.StreamReader, handle: Send, oversized: Callable[[], Awaitable[None]]
) -> None:
    """Feed each newline-terminated line of ``reader`` to ``handle`` until end of file.

    A line longer than the reader's limit is skipped to its end and ``oversized`` is told.
    """
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:
            if e.partial.strip():
                await handle(e.partial + b"\n")
            return
        except asyncio.LimitOverrunError as e:
            await _skip_line(reader, e.consumed)
            await oversized()
            continue
        if line.strip():
            await handle(line)


async def _skip_line(reader: asyncio.StreamReader, consumed: int) -> None:
    """Discard the rest of an oversized line, newline included."""
    while True:
        await reader.readexactly(consumed)
        try:
            await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as e:
            consumed = e.consumed
        else:
            return
