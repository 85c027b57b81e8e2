"""Run the proxy on this process's stdin/stdout in front of an upstream stdio server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aegisflow.errors import OperationalError
from aegisflow.mcp.http import HttpUpstream
from aegisflow.mcp.proxy import MAX_LINE, Proxy, Send, SendUpstream, relay_lines
from aegisflow.mcp.service import Service
from aegisflow.policy.normalize import McpServer

STOP_GRACE = 5.0
PRIVATE = ("AEGISFLOW_API_KEY",)

log = logging.getLogger("aegisflow.mcp")


def upstream_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The upstream server's environment: ours and ``extra``, without our secrets."""
    env = {**os.environ, **extra}
    for name in PRIVATE:
        env.pop(name, None)
    return env


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    """How to start the server behind the proxy."""

    command: Sequence[str]
    env: Mapping[str, str]
    max_message: int

    async def start(self) -> asyncio.subprocess.Process:
        """Raises:
        OperationalError: If the command cannot be started.
        """
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=self.max_message,
                env=upstream_env(self.env),
            )
        except OSError as e:
            raise OperationalError(
                f"cannot start the MCP server {self.command[0]!r}: {e.strerror}"
            ) from e
        if process.stdin is None or process.stdout is None:  # never: both are PIPE
            raise OperationalError("the MCP server's pipes were not created")
        return process


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What both transports share: the service to ask, and how long to wait for whom."""

    service_url: str
    api_key: str = field(repr=False)
    session: str
    timeout: float
    call_timeout: float = 300.0
    max_message: int = MAX_LINE
    refusals_as_results: bool = False

    def service(self) -> Service:
        return Service(self.service_url, self.api_key, session=self.session, timeout=self.timeout)

    def proxy(
        self, server: McpServer, service: Service, to_agent: Send, to_upstream: SendUpstream
    ) -> Proxy:
        return Proxy(
            server,
            service,
            self.session,
            to_agent,
            to_upstream,
            call_timeout=self.call_timeout,
            refusals_as_results=self.refusals_as_results,
        )


async def run_stdio(
    server: McpServer,
    command: Sequence[str],
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    restarts: int = 0,
) -> int:
    """Proxy until the agent closes stdin (0), or the upstream exits more often than
    ``restarts`` allows (1).

    A restarted upstream is given the agent's ``initialize`` again before anything else,
    so the agent's session goes on; requests it had not answered were answered with an
    error when it stopped. The upstream starts with this process's environment plus
    ``env``, minus the agent's AegisFlow key: the server it proxies has no business with it.

    Raises:
        OperationalError: If the upstream command cannot be started.
    """
    spec = Upstream(command=command, env=env or {}, max_message=settings.max_message)
    process = await spec.start()
    agent_in, to_agent = await _agent_pipes(settings.max_message)

    async def to_upstream(line: bytes, _headers: Mapping[str, str] | None) -> None:
        # stdio has no per-call headers: a credential delivered to the caller goes unused.
        stdin = process.stdin
        if stdin is None or stdin.is_closing():
            return  # between a crash and the restart: the agent was already answered
        stdin.write(line)
        with contextlib.suppress(ConnectionError):
            await stdin.drain()

    async with settings.service() as service:
        proxy = settings.proxy(server, service, to_agent, to_upstream)
        from_agent = asyncio.create_task(
            relay_lines(agent_in, proxy.from_agent, proxy.agent_oversized)
        )
        while True:
            from_upstream = asyncio.create_task(
                relay_lines(_stdout(process), proxy.from_upstream, proxy.upstream_oversized)
            )
            done, _ = await asyncio.wait(
                {from_agent, from_upstream}, return_when=asyncio.FIRST_COMPLETED
            )
            if from_agent in done:
                await _stop(process, from_upstream)
                code = 0
                break
            await process.wait()
            await proxy.upstream_gone(f"exit status {process.returncode}")
            if restarts <= 0:
                from_agent.cancel()
                code = 1
                break
            restarts -= 1
            log.warning("the MCP server exited (%s); restarting it", process.returncode)
            process = await spec.start()
            await proxy.replay_handshake()
        await proxy.close()
        with contextlib.suppress(asyncio.CancelledError):
            await from_agent
        return code


async def run_http(
    server: McpServer, url: str, settings: Settings, *, headers: Mapping[str, str]
) -> int:
    """Proxy the agent's stdio to a Streamable HTTP server until the agent closes stdin.

    A credential the service delivers for an allowed call (``deliver: caller``) goes on
    that call's POST as ``Authorization: Bearer``; nothing else ever sees it.
    """
    agent_in, to_agent = await _agent_pipes(settings.max_message)
    async with settings.service() as service:
        proxy: Proxy | None = None

        async def deliver(line: bytes) -> None:
            if proxy is not None:
                await proxy.from_upstream(line)

        upstream = HttpUpstream(url, headers, deliver, max_message=settings.max_message)
        proxy = settings.proxy(server, service, to_agent, upstream.send)
        try:
            await relay_lines(agent_in, proxy.from_agent, proxy.agent_oversized)
        finally:
            await upstream.close()
            await proxy.close()
    return 0


async def _agent_pipes(max_message: int) -> tuple[asyncio.StreamReader, Send]:
    """This process's stdin as a reader, and a writer of lines to its stdout."""
    loop = asyncio.get_running_loop()
    agent_in = asyncio.StreamReader(limit=max_message)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(agent_in), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(sys.stdout.fileno(), "wb", closefd=False)
    )
    agent_out = asyncio.StreamWriter(transport, protocol, None, loop)

    async def to_agent(line: bytes) -> None:
        agent_out.write(line)
        await agent_out.drain()

    return agent_in, to_agent


def _stdout(process: asyncio.subprocess.Process) -> asyncio.StreamReader:
    if process.stdout is None:  # never: Upstream.start asks for a pipe and checks it
        raise OperationalError("the MCP server has no stdout pipe")
    return process.stdout


async def _stop(process: asyncio.subprocess.Process, relay: asyncio.Task[None]) -> None:
    """The agent is gone: let the server finish and exit, or end it."""
    if process.stdin is not None:
        process.stdin.close()
    try:
        await asyncio.wait_for(process.wait(), STOP_GRACE)
    except TimeoutError:
        process.terminate()
    await relay
