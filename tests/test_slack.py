"""Slack approvals against a live service and a local stand-in for Slack.

The stand-in receives the incoming-webhook posts and the response-URL updates; the tests
send interactive payloads signed the way Slack signs them (and signed wrongly).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from serve_helpers import ADMIN_KEY, AGENT_KEY, ALICE_KEY, Served, http, make_home, serving

from aegisflow.approvals import Approval
from aegisflow.channels.slack import (
    REPLAY_WINDOW,
    Refused,
    check_signature,
    review_message,
    signature,
)
from aegisflow.envelope import Actor, Envelope

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SESSION = "slack-1"
CURL = {
    "protocol": "shell",
    "tool": "shell.exec",
    "target": "/workspace",
    "capability": "execute",
    "parameters": {"command": "curl -fsSL https://example.com/x.sh -o x.sh"},
    "justification": "<!channel> fetch the <https://evil.example|installer>",
}


class StandInSlack:
    """Slack's side: records webhook posts and response-URL updates."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, path: str, count: int = 1) -> list[Any]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [body for p, body in self.posts if p == path]
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"nothing posted to {path}: {self.posts}")


@pytest.fixture(scope="module")
def slack() -> Iterator[StandInSlack]:
    stand_in = StandInSlack()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, slack: StandInSlack) -> Iterator[Served]:
    home = make_home(tmp_path_factory.mktemp("slack"))
    args = [
        "--slack-webhook-url",
        f"{slack.url}/webhook",
        "--slack-user",
        "U0ALICE=alice",
        "--slack-user",
        "U0AGENT=claude-code",
        "--slack-response-prefix",
        f"{slack.url}/respond/",
    ]
    with serving(home, *args, env={"SLACK_SIGNING_SECRET": SECRET}) as served:
        yield served


def queue(service: Served, slack: StandInSlack, body: dict[str, Any]) -> tuple[str, Any]:
    before = len([p for p, _ in slack.posts if p == "/webhook"])
    answer = http_as_agent(service, body)
    assert answer["decision"] == "review"
    message = slack.wait_for("/webhook", before + 1)[-1]
    return str(answer["envelope_id"]), message


def http_as_agent(service: Served, body: Any) -> Any:
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        service.url + "/v1/actions",
        data=json.dumps(body).encode(),
        headers={"X-API-Key": AGENT_KEY, "X-AegisFlow-Session": SESSION},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.load(response)


def click(
    service: Served,
    slack: StandInSlack,
    approval_id: str,
    *,
    action: str = "approve",
    user: str = "U0ALICE",
    secret: str = SECRET,
    age: int = 0,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "someone"},
        "actions": [
            {"action_id": action, "value": approval_id, "block_id": f"aegisflow:{approval_id}"}
        ],
        "response_url": f"{slack.url}/respond/{approval_id}",
    }
    body = (
        raw
        if raw is not None
        else urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    )
    stamp = str(int(time.time()) - age)
    return send(service, body, stamp, signature(secret, stamp, body))


def send(service: Served, body: bytes, stamp: str, signed: str) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        service.url + "/slack/interactive",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signed,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.load(e)


def status_of(service: Served, approval_id: str) -> str:
    return str(http(service, "GET", f"/admin/v1/approvals/{approval_id}", ALICE_KEY)["status"])


def test_a_review_is_posted_with_buttons_and_approved_from_slack(
    service: Served, slack: StandInSlack
) -> None:
    approval_id, message = queue(service, slack, CURL)
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == ["approve", "deny"]
    assert {e["value"] for e in actions["elements"]} == {approval_id}
    text = json.dumps(message)
    assert "<!channel>" not in text  # agent text cannot ping the channel or hide a link
    assert "&lt;!channel&gt;" in text

    status, answer = click(service, slack, approval_id)
    assert (status, answer) == (200, {"ok": True})
    shown = http(service, "GET", f"/admin/v1/approvals/{approval_id}", ALICE_KEY)
    assert (shown["status"], shown["reviewer"]) == ("approved", "alice")
    (update,) = slack.wait_for(f"/respond/{approval_id}")
    assert update["replace_original"] is True
    assert update["text"].startswith("Approved by alice")
    retried = http_as_agent(service, CURL)
    assert retried["decision"] == "allow"
    assert retried["matched_rule"] == f"approved:{approval_id}"


def test_deny_from_slack(service: Served, slack: StandInSlack) -> None:
    body = {**CURL, "parameters": {"command": "curl https://example.com/deny.sh -o d"}}
    approval_id, _ = queue(service, slack, body)
    assert click(service, slack, approval_id, action="deny")[0] == 200
    assert status_of(service, approval_id) == "denied"


@pytest.mark.parametrize(
    ("case", "kwargs", "status"),
    [
        ("wrong secret", {"secret": "not-the-secret"}, 401),
        ("stale", {"age": REPLAY_WINDOW + 30}, 401),
        ("unknown user", {"user": "U0MALLORY"}, 200),
        ("an agent's principal", {"user": "U0AGENT"}, 200),
        ("not a button", {"raw": b"payload=%7B%22type%22%3A%22view_submission%22%7D"}, 400),
    ],
)
def test_refused_clicks_change_nothing_and_are_counted(
    service: Served, slack: StandInSlack, case: str, kwargs: dict[str, Any], status: int
) -> None:
    body = {**CURL, "parameters": {"command": f"curl https://example.com/{case.replace(' ', '-')}"}}
    approval_id, _ = queue(service, slack, body)
    got, answer = click(service, slack, approval_id, **kwargs)
    assert got == status, answer
    assert answer.get("ok") is not True
    assert status_of(service, approval_id) == "pending"
    metrics = urllib.request.Request(  # noqa: S310
        service.url + "/metrics", headers={"X-API-Key": ADMIN_KEY}
    )
    with urllib.request.urlopen(metrics, timeout=10) as response:  # noqa: S310
        assert 'aegisflow_channel_refusals_total{channel="slack"' in response.read().decode()


def test_the_same_signed_request_twice_is_a_replay(service: Served, slack: StandInSlack) -> None:
    body = {**CURL, "parameters": {"command": "curl https://example.com/replay.sh -o r"}}
    approval_id, _ = queue(service, slack, body)
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "actions": [{"action_id": "deny", "value": approval_id}],
        "response_url": "",
    }
    raw = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    signed = signature(SECRET, stamp, raw)
    assert send(service, raw, stamp, signed)[0] == 200
    again, answer = send(service, raw, stamp, signed)
    assert again == 401
    assert "already received" in answer["text"]


def test_signature_checks() -> None:
    body = b"payload=%7B%7D"
    stamp = "1700000000"
    good = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature(SECRET, stamp, body)}
    check_signature(SECRET, good, body, now=1700000000 + 10)
    for headers, now, reason in [
        (good, 1700000000 + REPLAY_WINDOW + 1, "stale"),
        (good, 1700000000 - REPLAY_WINDOW - 1, "stale"),
        ({**good, "X-Slack-Signature": "v0=" + "0" * 64}, 1700000000, "bad-signature"),
        ({"X-Slack-Signature": good["X-Slack-Signature"]}, 1700000000, "unsigned"),
        ({**good, "X-Slack-Request-Timestamp": "soon"}, 1700000000, "unsigned"),
    ]:
        with pytest.raises(Refused) as refused:
            check_signature(SECRET, headers, body, now=now)
        assert refused.value.reason == reason
    with pytest.raises(Refused):
        check_signature(SECRET, good, body + b"x", now=1700000000)


def test_the_message_escapes_agent_text() -> None:
    envelope = Envelope(
        envelope_id="00000000-0000-4000-8000-000000000001",
        actor=Actor(agent="claude-code", session="s1", principal="claude-code"),
        protocol="git",
        tool="github.create_pull_request",
        target="aegisflow/aegisflow",
        capability="write",
        parameters={"title": "<@U0ALICE> <!here> & <https://x|click>"},
    )
    now = datetime(2026, 4, 6, tzinfo=UTC)
    approval = Approval(
        approval_id=envelope.envelope_id,
        envelope=envelope,
        action_digest=envelope.action_digest,
        policy_hash="sha256:x",
        queued_at=now,
        expires_at=now + timedelta(minutes=30),
        approvers=(),
        rule="mcp:github.create_pull_request",
        reason="pull requests are reviewed",
    )
    text = json.dumps(review_message(approval, "http://localhost:8081"))
    for raw in ("<@U0ALICE>", "<!here>", "<https://x|click>"):
        assert raw not in text
    assert "&amp;" in text
