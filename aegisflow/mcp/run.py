"""Run the proxy on this process's stdin/stdout in front of an upstream stdio server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Mapping, Sequence

from aegisflow.errors import OperationalError
from aegisflow.mcp.proxy import MAX_LINE, Proxy, relay_lines
from aegisflow.mcp.service import Service
from aegisflow.policy.normalize import McpServer

STOP_GRACE = 5.0
PRIVATE = ("AEGISFLOW_API_KEY",)


def upstream_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The upstream server's environment: ours and ``extra``, without our secrets."""
    env = {**os.environ, **extra}
    for name in PRIVATE:
        env.pop(name, None)
    return env


async def run_stdio(
    server: McpServer,
    command: Sequence[str],
    *,
    service_url: str,
    api_key: str,
    session: str,
    timeout: float,
    call_timeout: float = 300.0,
    max_message: int = MAX_LINE,
    env: Mapping[str, str] | None = None,
    refusals_as_results: bool = False,
) -> int:
    """Proxy until the agent closes stdin (0) or the upstream exits first (1).

    The upstream starts with this process's environment plus ``env``, minus the agent's
    AegisFlow key: the server it proxies has no business with it.

    Raises:
        OperationalError: If the upstream command cannot be started.
    """
    try:
        upstream = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=max_message,
            env=upstream_env(env or {}),
        )
    except OSError as e:
        raise OperationalError(f"cannot start the MCP server {command[0]!r}: {e.strerror}") from e
    if upstream.stdin is None or upstream.stdout is None:  # never: both are PIPE
        raise OperationalError("the MCP server's pipes were not created")
    loop = asyncio.get_running_loop()
    agent_in = asyncio.StreamReader(limit=max_message)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(agent_in), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(sys.stdout.fileno(), "wb", closefd=False)
    )
    agent_out = asyncio.StreamWriter(transport, protocol, None, loop)
    upstream_in = upstream.stdin

    async def to_agent(line: bytes) -> None:
        agent_out.write(line)
        await agent_out.drain()

    async def to_upstream(line: bytes) -> None:
        upstream_in.write(line)
        with contextlib.suppress(ConnectionError):
            await upstream_in.drain()

    async with Service(service_url, api_key, session=session, timeout=timeout) as service:
        proxy = Proxy(
            server,
            service,
            session,
            to_agent,
            to_upstream,
            call_timeout=call_timeout,
            refusals_as_results=refusals_as_results,
        )
        from_agent = asyncio.create_task(
            relay_lines(agent_in, proxy.from_agent, proxy.agent_oversized)
        )
        from_upstream = asyncio.create_task(
            relay_lines(upstream.stdout, proxy.from_upstream, proxy.upstream_oversized)
        )
        done, _ = await asyncio.wait(
            {from_agent, from_upstream}, return_when=asyncio.FIRST_COMPLETED
        )
        if from_agent in done:
            upstream_in.close()  # the agent is gone: let the server finish and exit
            try:
                await asyncio.wait_for(upstream.wait(), STOP_GRACE)
            except TimeoutError:
                upstream.terminate()
            await from_upstream
            code = 0
        else:
            await upstream.wait()
            await proxy.upstream_gone(f"exit status {upstream.returncode}")
            from_agent.cancel()
            code = 1
        await proxy.close()
        with contextlib.suppress(asyncio.CancelledError):
            await from_agent
        return code
