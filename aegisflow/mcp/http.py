"""An upstream MCP server over Streamable HTTP (the client side of the transport).

Each message from the agent is POSTed as it came. A request's answer comes back as one
JSON body or as a server-sent event stream (which may carry notifications and the
server's own requests before the response); notifications and responses get 202. The
server's ``Mcp-Session-Id`` is kept and sent back, with the negotiated
``MCP-Protocol-Version``. Per-call headers (a credential the policy minted for this call)
go on that call's POST only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping

import aiohttp

from aegisflow.errors import OperationalError
from aegisflow.mcp.proxy import UPSTREAM_CODE, Send

log = logging.getLogger("aegisflow.mcp")


class HttpUpstream:
    """One MCP session with a Streamable HTTP server."""

    def __init__(
        self, url: str, headers: Mapping[str, str], deliver: Send, *, max_message: int
    ) -> None:
        self.url = url
        self._headers = dict(headers)
        self._deliver = deliver
        self._max_message = max_message
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            read_bufsize=max_message,  # a limit on one event line, not an allocation
        )
        self._session_id: str | None = None
        self._protocol: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, line: bytes, headers: Mapping[str, str] | None = None) -> None:
        """POST one message; what comes back is delivered as it arrives."""
        task = asyncio.create_task(self._post(line, headers or {}))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session_id is not None:  # end the session, as the transport asks
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                async with self._http.delete(self.url, headers=self._request_headers({})):
                    pass
        await self._http.close()

    def _request_headers(self, extra: Mapping[str, str]) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **self._headers,
            **extra,
        }
        if self._session_id is not None:
            headers["Mcp-Session-Id"] = self._session_id
        if self._protocol is not None:
            headers["MCP-Protocol-Version"] = self._protocol
        return headers

    async def _post(self, line: bytes, extra: Mapping[str, str]) -> None:
        request_id = _request_id(line)
        try:
            async with self._http.post(
                self.url, data=line, headers=self._request_headers(extra)
            ) as response:
                session = response.headers.get("Mcp-Session-Id")
                if session:
                    self._session_id = session
                if response.status == 202:
                    return
                if response.status >= 400:
                    await self._fail(request_id, f"the MCP server answered HTTP {response.status}")
                    return
                if response.content_type == "text/event-stream":
                    async for data in _events(response.content, self._max_message):
                        await self._pass(data)
                else:
                    body = await response.read()
                    if body.strip():
                        await self._pass(body.strip())
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, OperationalError) as e:
            await self._fail(request_id, f"cannot reach the MCP server ({type(e).__name__})")

    async def _pass(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        if isinstance(message, dict):
            result = message.get("result")
            if isinstance(result, dict) and isinstance(result.get("protocolVersion"), str):
                self._protocol = result["protocolVersion"]  # the initialize answer
        await self._deliver(data.replace(b"\n", b"") + b"\n")

    async def _fail(self, request_id: object, why: str) -> None:
        if request_id is None:
            log.warning("%s", why)
            return
        error = {"code": UPSTREAM_CODE, "message": f"{why}; the call's outcome is unknown."}
        reply = {"jsonrpc": "2.0", "id": request_id, "error": error}
        await self._deliver(json.dumps(reply, separators=(",", ":")).encode() + b"\n")


def _request_id(line: bytes) -> object:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if isinstance(message, dict) and "method" in message:
        return message.get("id")
    return None


async def _events(stream: aiohttp.StreamReader, limit: int) -> AsyncIterator[bytes]:
    """The ``data`` of each server-sent event (lines joined with newlines).

    Raises:
        OperationalError: If one event is larger than ``limit``.
    """
    data: list[bytes] = []
    size = 0
    async for raw in stream:
        line = raw.rstrip(b"\r\n")
        if not line:
            if data:
                yield b"\n".join(data)
            data, size = [], 0
        elif line.startswith(b"data:"):
            chunk = line[5:].removeprefix(b" ")
            size += len(chunk)
            if size > limit:
                raise OperationalError("an event from the MCP server is too large")
            data.append(chunk)
    if data:
        yield b"\n".join(data)
