"""Agent hooks: the built-in tools of Claude Code, Codex, Cursor and Copilot, governed.

An agent runs ``aegisctl hook <agent>`` before each built-in tool call (and Claude Code
and Codex after it). The hook turns the agent's payload into actions, asks the service
to evaluate them (the agent runs the tool itself), and answers in the agent's format.
Everything here is standard library only and imported lazily: the hook is a process
started for every tool call, so its start-up time is the agent's latency.
"""

AGENT_NAMES = ("claude-code", "codex", "cursor", "copilot")
