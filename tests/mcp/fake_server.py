"""A scripted stdio MCP server for the bridge's fault tests: ``python fake_server.py MODE``.

It answers ``initialize`` and ``tools/list`` (one tool, ``echo``); on ``tools/call`` it
behaves as MODE says: ``crash`` exits, ``silent`` never answers, ``crash-once`` exits
the first time ($FAKE_MARKER records it), ``garbage`` writes a line that is not JSON-RPC
and then answers, ``echo`` answers with the arguments, ``env`` with
the names of the AegisFlow and FAKE variables it was started with.
"""

from __future__ import annotations

import json
import os
import sys


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    mode = sys.argv[1]
    for line in sys.stdin:
        message = json.loads(line)
        method, request_id = message.get("method"), message.get("id")
        if method == "initialize":
            send({"jsonrpc": "2.0", "id": request_id, "result": {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "fake", "version": "1"},
            }})  # fmt: skip
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": request_id, "result": {"tools": [
                {"name": "echo", "inputSchema": {"type": "object"}},
            ]}})  # fmt: skip
        elif method == "tools/call":
            if mode == "crash":
                sys.exit(3)
            marker = os.environ.get("FAKE_MARKER", "")
            if mode == "crash-once" and marker and not os.path.exists(marker):
                open(marker, "w").close()
                sys.exit(3)
            if mode == "silent":
                continue
            if mode == "garbage":
                sys.stdout.write("this is not json-rpc\n")
            text = json.dumps(message["params"].get("arguments", {}))
            if mode == "env":  # which AegisFlow variables and settings the server was given
                text = json.dumps(
                    sorted(k for k in os.environ if k.startswith(("AEGISFLOW", "FAKE")))
                )
            send({"jsonrpc": "2.0", "id": request_id,
                  "result": {"content": [{"type": "text", "text": text}]}})  # fmt: skip


if __name__ == "__main__":
    main()
