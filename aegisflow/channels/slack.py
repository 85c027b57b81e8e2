"""Slack approvals: a Block Kit message per review, and its Approve / Deny buttons.

Each approval the service queues is posted to a configured incoming webhook with the
action's summary and two buttons. Slack sends a click to ``POST /slack/interactive``; the
request is accepted only with a valid ``v0`` signature (HMAC-SHA256 with the app's signing
secret over ``v0:<timestamp>:<raw body>``) no older than five minutes. The Slack user is
mapped to a principal by configuration, and that principal's roles (from the API keys
file) go through the same approval rules as ``aegisctl approve``: an agent never
approves, nobody approves their own session, the rule's approvers apply, single use.
The message is then replaced with the outcome. A bad signature, a stale or replayed
request (the same signature twice), or an unmapped user is refused; each refusal is
logged and counted in ``aegisflow_channel_refusals_total`` (not written to the ledger:
an unauthenticated sender must not be able to grow it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web

from aegisflow.approvals import Approval
from aegisflow.auth import ApiKeys
from aegisflow.errors import AegisError, InputError
from aegisflow.service import Governance

REPLAY_WINDOW = 300
"""Seconds a signed Slack request stays acceptable (Slack's own recommendation)."""
POST_TIMEOUT = 5.0
MAX_TEXT = 2900
"""Slack truncates a section's text at 3,000 characters."""

log = logging.getLogger("aegisflow.slack")


@dataclass(frozen=True)
class SlackConfig:
    webhook_url: str
    signing_secret: str = field(repr=False)
    users: Mapping[str, str]
    """Slack user id -> AegisFlow principal."""
    base_url: str = ""
    response_prefixes: tuple[str, ...] = ("https://hooks.slack.com/",)
    """Where the outcome may be posted: Slack's response URLs (tests add their stand-in)."""


class Refused(Exception):
    """A Slack request that is not acted on; ``reason`` is its metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def check_signature(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> None:
    """Accept only a request Slack signed within the replay window.

    Raises:
        Refused: On a missing or malformed timestamp, one outside the window, or a
            signature that does not match.
    """
    stamp = headers.get("X-Slack-Request-Timestamp", "")
    given = headers.get("X-Slack-Signature", "")
    if not stamp.isdigit() or not given:
        raise Refused("unsigned", "the request carries no Slack signature")
    moment = time.time() if now is None else now
    if abs(moment - int(stamp)) > REPLAY_WINDOW:
        raise Refused("stale", "the Slack request is older than five minutes (or replayed)")
    if not hmac.compare_digest(given.encode(), signature(secret, stamp, body).encode()):
        raise Refused("bad-signature", "the Slack signature does not match")


def review_message(approval: Approval, base_url: str) -> dict[str, Any]:
    """Block Kit for one queued approval, with Approve and Deny buttons."""
    envelope = approval.envelope
    params = json.dumps(dict(envelope.parameters), indent=2, sort_keys=True)
    if len(params) > 1500:
        params = params[:1500] + "\n…"
    lines = [
        f"*{_esc(envelope.tool)}* on `{_esc(envelope.target) or '-'}`",
        f"Agent *{_esc(envelope.actor.agent)}* ({_esc(envelope.actor.principal)}), "
        f"session `{_esc(envelope.session)}`",
        f"Rule `{_esc(approval.rule)}`: {_esc(approval.reason)}",
    ]
    if envelope.justification:
        lines.append(f"Justification: {_esc(envelope.justification[:500])}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Approval needed"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:MAX_TEXT]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"```{_esc(params)}```"}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Envelope `{approval.approval_id}` · expires "
                    f"{approval.expires_at.strftime('%Y-%m-%d %H:%M:%SZ')}"
                    + (f" · <{base_url}/console/|console>" if base_url else ""),
                }
            ],
        },
        {
            "type": "actions",
            "block_id": f"aegisflow:{approval.approval_id}",
            "elements": [
                _button("Approve", "approve", approval.approval_id, "primary"),
                _button("Deny", "deny", approval.approval_id, "danger"),
            ],
        },
    ]
    return {"text": f"Approval needed: {envelope.tool} on {envelope.target}", "blocks": blocks}


def outcome_message(approval: Approval, *, approved: bool, reviewer: str) -> dict[str, Any]:
    verb = "Approved" if approved else "Denied"
    text = (
        f"{verb} by {_esc(reviewer)}: *{_esc(approval.envelope.tool)}* on "
        f"`{_esc(approval.envelope.target) or '-'}` (`{approval.approval_id}`)"
    )
    return {
        "replace_original": True,
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


class SlackChannel:
    """Posts reviews to the webhook and answers the buttons."""

    def __init__(self, config: SlackConfig, governance: Governance, keys: ApiKeys) -> None:
        self.config = config
        self.governance = governance
        self.keys = keys
        self.refused: Callable[[str], None] = lambda reason: None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: dict[str, float] = {}
        """Signatures accepted in the replay window: the same request twice is a replay."""

    def _not_seen(self, signed: str) -> None:
        now = time.monotonic()
        for old in [s for s, at in self._seen.items() if now - at > REPLAY_WINDOW]:
            del self._seen[old]
        if signed in self._seen:
            raise Refused("replayed", "this Slack request was already received")
        self._seen[signed] = now

    async def context(self, _app: web.Application) -> AsyncIterator[None]:
        """The app's cleanup context: one client session, pending posts finished on exit."""
        timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            self._http = http
            self.governance.on_review.append(self.announce)
            yield
            self.governance.on_review.remove(self.announce)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            self._http = None

    def announce(self, approval: Approval) -> None:
        """Post ``approval`` in the background: Slack being slow never slows a decision."""
        message = review_message(approval, self.config.base_url)
        task = asyncio.get_running_loop().create_task(self._post(self.config.webhook_url, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, message: Mapping[str, Any]) -> None:
        if self._http is None:
            return
        try:
            async with self._http.post(url, json=message) as response:
                if response.status >= 300:
                    log.warning(json.dumps({"msg": "slack post failed", "status": response.status}))
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            log.warning(json.dumps({"msg": "slack post failed", "error": type(e).__name__}))

    async def interactive(self, request: web.Request) -> web.Response:
        """``POST /slack/interactive``: a button click, signed by Slack."""
        body = await request.read()
        try:
            check_signature(self.config.signing_secret, request.headers, body)
            self._not_seen(request.headers["X-Slack-Signature"])
            action, user, response_url = _click(body, self.config.response_prefixes)
        except Refused as e:
            return self._refuse(e, status=401 if e.reason != "malformed" else 400)
        principal_name = self.config.users.get(user)
        principal = self.keys.principal(principal_name) if principal_name else None
        if principal is None:
            return self._refuse(
                Refused(
                    "unknown-user", f"Slack user {user} is not mapped to an AegisFlow reviewer"
                ),
                status=200,  # Slack shows the text to the person who clicked
                user=user,
            )
        approval_id, approved = action
        try:
            decided, evidence = await self.governance.decide(
                approval_id, principal, approved=approved, comment=f"via Slack ({user})"
            )
        except AegisError as e:
            return self._refuse(Refused(e.reference, e.message), status=200, user=user)
        log.info(
            json.dumps(
                {
                    "msg": "slack decision",
                    "envelope_id": approval_id,
                    "status": decided.status,
                    "reviewer": principal.name,
                    "slack_user": user,
                    "evidence_hash": evidence,
                }
            )
        )
        if response_url:
            await self._post(
                response_url, outcome_message(decided, approved=approved, reviewer=principal.name)
            )
        return web.json_response({"ok": True})

    def _refuse(self, refused: Refused, *, status: int, user: str | None = None) -> web.Response:
        self.refused(refused.reason)
        log.warning(
            json.dumps(
                {"msg": "slack request refused", "reason": refused.reason, "slack_user": user}
            )
        )
        return web.json_response(
            {"response_type": "ephemeral", "replace_original": False, "text": refused.message},
            status=status,
        )


def _click(body: bytes, prefixes: tuple[str, ...]) -> tuple[tuple[str, bool], str, str]:
    """``((approval id, approved), slack user id, response_url)`` of a ``block_actions`` payload.

    Raises:
        Refused: If it is not one of our buttons.
    """
    try:
        form = parse_qs(body.decode(), strict_parsing=True, max_num_fields=10)
        payload = json.loads(form["payload"][0])
        (clicked,) = payload["actions"]
        verb, approval_id = clicked["action_id"], clicked["value"]
        user = payload["user"]["id"]
        response_url = payload.get("response_url", "")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError):
        raise Refused("malformed", "not a Slack button click AegisFlow sent") from None
    if payload.get("type") != "block_actions" or verb not in ("approve", "deny"):
        raise Refused("malformed", "not an AegisFlow approve or deny button")
    if not all(isinstance(v, str) for v in (approval_id, user, response_url)):
        raise Refused("malformed", "not an AegisFlow approve or deny button")
    if response_url and not response_url.startswith(prefixes):
        raise Refused("malformed", "the response URL is not Slack's")
    return (approval_id, verb == "approve"), user, response_url


def _button(text: str, action: str, value: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action,
        "value": value,
        "style": style,
    }


def _esc(text: str) -> str:
    """Slack mrkdwn escaping: ``&``, ``<`` and ``>`` (so a PR title cannot ping @channel)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def load_config(
    webhook_url: str,
    secret: str,
    users: list[str],
    *,
    base_url: str = "",
    response_prefixes: tuple[str, ...] = ("https://hooks.slack.com/",),
) -> SlackConfig:
    """``--slack-user SLACK_ID=PRINCIPAL`` pairs and the rest.

    Raises:
        InputError: On a malformed mapping, an empty secret or a non-https webhook.
    """
    if not secret:
        raise InputError("the Slack signing secret is empty")
    if not webhook_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise InputError("the Slack webhook URL must be https (or loopback, for testing)")
    mapping: dict[str, str] = {}
    for spec in users:
        slack_id, _, principal = spec.partition("=")
        if not slack_id or not principal:
            raise InputError(f"--slack-user takes SLACK_ID=PRINCIPAL, not {spec!r}")
        mapping[slack_id] = principal
    return SlackConfig(webhook_url, secret, mapping, base_url, response_prefixes)


def attach(app: web.Application, channel: SlackChannel) -> None:
    """Serve ``POST /slack/interactive`` and post every new review, on the gateway app."""
    from aegisflow.gateway.app import METRICS  # noqa: PLC0415 - the gateway builds on us

    channel.refused = lambda reason: app[METRICS].refused.labels("slack", reason).inc()
    app.cleanup_ctx.append(channel.context)
    app.router.add_post("/slack/interactive", channel.interactive)
