"""kill -9 of ``aegisflow serve`` while agents are sending actions.

After a restart, every action that got an answer is in the ledger with the evidence hash
it was answered with, the ledger verifies, and approvals are exactly as they were: the
pending one still pending, the approved one still usable once.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from serve_helpers import ADMIN_KEY, AGENT_KEY, ALICE_KEY, make_home, serving, start
from test_cli import AEGISCTL, run
from test_gateway import GET_FILE as READ
from test_gateway import PR, RM

SESSIONS = [f"crash-{n}" for n in range(4)]


def call(url: str, path: str, body: Any, key: str, session: str | None = None) -> Any:
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    if session:
        headers["X-AegisFlow-Session"] = session
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        url + path, data=data, headers=headers, method="GET" if body is None else "POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.load(response)


def test_kill_9_loses_no_answered_action_and_no_approval(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    served = start(home)
    url = served.url
    pending = call(url, "/v1/actions", PR, AGENT_KEY, "crash-review")
    other = {**PR, "target": "aegisflow/other"}
    approved = call(url, "/v1/actions", other, AGENT_KEY, "crash-review")
    call(url, f"/admin/v1/approvals/{approved['envelope_id']}/approve", {}, ALICE_KEY)

    answered: list[tuple[str, str, str]] = []  # (session, envelope_id, evidence_hash)
    lock = threading.Lock()
    stop = threading.Event()

    def agent(session: str) -> None:
        n = 0
        while not stop.is_set():
            action = RM if n % 5 == 4 else {**READ, "parameters": {"path": f"f{n}.py"}}
            n += 1
            try:
                answer = call(url, "/v1/actions", action, AGENT_KEY, session)
            except (urllib.error.URLError, OSError, ValueError):
                return  # the server died mid-request: no answer, no promise
            with lock:
                answered.append((session, answer["envelope_id"], answer["evidence_hash"]))

    threads = [threading.Thread(target=agent, args=(s,)) for s in SESSIONS]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(answered) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    served.kill()  # SIGKILL with requests in flight
    stop.set()
    for thread in threads:
        thread.join()
    assert len(answered) >= 200

    with serving(home) as again:
        recorded: dict[str, str] = {}
        for session in SESSIONS:
            shown = call(again.url, f"/admin/v1/sessions/{session}", None, ADMIN_KEY)
            for entry in shown["entries"]:
                recorded[entry["body"]["envelope"]["envelope_id"]] = entry["entry_hash"]
        missing = [a for a in answered if recorded.get(a[1]) != a[2]]
        assert missing == []

        queue = call(again.url, "/admin/v1/approvals", None, ADMIN_KEY)
        assert [p["envelope_id"] for p in queue["pending"]] == [pending["envelope_id"]]
        retry = {**other, "approval_ref": approved["envelope_id"]}
        allowed = call(again.url, "/v1/actions", retry, AGENT_KEY, "crash-review")
        assert allowed["matched_rule"] == f"approved:{approved['envelope_id']}"
        again_refused = call(again.url, "/v1/actions", retry, AGENT_KEY, "crash-review")
        assert again_refused["decision"] == "block"  # single use survives the crash too

    verified = run(
        AEGISCTL, "evidence", "verify", "--repo", "ledger",
        "--trusted-key", "keys/ledger.key.pub", home=home,
    )  # fmt: skip
    assert verified.code == 0, verified
    assert "valid: true" in verified.out
