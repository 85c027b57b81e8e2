"""The console's routes, mounted on the gateway application under ``/console``.

* ``GET/POST /console/login``: the sign-in form; a reviewer, auditor or admin key
  becomes a session cookie. ``POST /console/logout`` ends the session.
* ``GET /console/``: pending approvals, newest first, with approve and deny;
  ``GET /console/pending.json``: a version of that list, which the page polls.
* ``POST /console/approvals/{id}/approve|deny`` (reviewer, admin): the same decision as
  the REST API, recorded the same way.
* ``GET /console/sessions[/{id}]``: sessions; one session's timeline and verification;
  ``GET /console/sessions/{id}/bundle``: its git bundle.

Every response carries a strict Content-Security-Policy (no inline script or style, no
framing, forms only to this origin) and ``Cache-Control: no-store``. Every POST needs the
session's CSRF token, and a request whose ``Origin`` is another site is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web

from aegisflow.approvals import Approval
from aegisflow.console.logins import (
    CONSOLE_ROLES,
    COOKIE,
    LOGIN_COOKIE,
    Login,
    Logins,
    same_token,
)
from aegisflow.envelope import is_envelope_id
from aegisflow.errors import AegisError
from aegisflow.gateway import app as gateway
from aegisflow.ledger.bundle import export_session
from aegisflow.ledger.entry import validate_session_id
from aegisflow.ledger.reading import list_sessions, session_entries

HERE = Path(__file__).resolve().parent
LOGINS = web.AppKey("console_logins", Logins)
STATIC = "console_static"
CHECKPOINT_TIMEOUT = 10.0
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

log = logging.getLogger("aegisflow.console")

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True)


def mount(app: web.Application) -> None:
    """Add the console's routes and headers to the gateway application."""
    app[LOGINS] = Logins()
    app.on_response_prepare.append(_headers)
    add = app.router
    add.add_get("/console", to_console)
    add.add_get("/console/", approvals_page)
    add.add_get("/console/login", login_page)
    add.add_post("/console/login", login)
    add.add_post("/console/logout", logout)
    add.add_get("/console/pending.json", pending_version)
    add.add_post("/console/approvals/{id}/{verb:approve|deny}", decide)
    add.add_get("/console/sessions", sessions_page)
    add.add_get("/console/sessions/{id}", session_page)
    add.add_get("/console/sessions/{id}/bundle", session_bundle)
    add.add_static("/console/static", HERE / "static", name=STATIC, append_version=True)


# -- pages --------------------------------------------------------------------------------

Page = Callable[[web.Request, Login], Awaitable[web.StreamResponse]]


def signed_in(page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Run ``page`` with the caller's console session, or send them to sign in."""

    async def handler(request: web.Request) -> web.StreamResponse:
        found = _signed_in(request)
        if found is None:
            return _redirect("/console/login")
        return await page(request, found[1])

    return handler


async def to_console(_request: web.Request) -> web.StreamResponse:
    return _redirect("/console/")


@signed_in
async def approvals_page(request: web.Request, signed: Login) -> web.StreamResponse:
    governance = request.app[gateway.GOVERNANCE]
    now = governance.clock()
    pending = sorted(governance.queue.pending(now), key=lambda a: a.queued_at, reverse=True)
    decided = request.query.get("decided", "")
    status = request.query.get("status", "")
    notice = None
    if is_envelope_id(decided) and status in ("approved", "denied"):
        notice = f"{status.capitalize()} {decided}: recorded in the ledger."
    return _render(
        request,
        "approvals.html",
        signed,
        approvals=[_approval_view(a, now) for a in pending],
        version=_version(pending),
        notice=notice,
        error=None,
    )


@signed_in
async def sessions_page(request: web.Request, signed: Login) -> web.StreamResponse:
    path = gateway.ledger_path(request)
    infos = await asyncio.get_running_loop().run_in_executor(
        None, gateway.read_only, path, list_sessions
    )
    infos = sorted(infos, key=lambda i: i.last_time, reverse=True)
    return _render(request, "sessions.html", signed, sessions=infos)


@signed_in
async def session_page(request: web.Request, signed: Login) -> web.StreamResponse:
    session = _path_session(request)
    if session is None:
        return _problem(request, signed, 400, "not a session id")
    try:
        report = await gateway.verify_ledger(
            request, session, fresh=True, timeout=CHECKPOINT_TIMEOUT
        )  # first: the checkpoint it may write covers the entries shown
        stored = await asyncio.get_running_loop().run_in_executor(
            None,
            gateway.read_only,
            gateway.ledger_path(request),
            lambda storage: session_entries(storage, session),
        )
    except AegisError as e:
        return _problem(request, signed, 404, e.message)
    summary = report.sessions.get(session)
    return _render(
        request,
        "session.html",
        signed,
        session=session,
        entries=[_entry_view(s) for s in stored],
        valid=report.valid,
        findings=[f.to_dict() for f in report.findings[:50]],
        lines=summary.lines if summary else [],
        closed=bool(summary and summary.closed),
    )


@signed_in
async def session_bundle(request: web.Request, signed: Login) -> web.StreamResponse:
    session = _path_session(request)
    if session is None:
        return _problem(request, signed, 400, "not a session id")
    return await gateway.stream_bundle(
        request, f"{session}.bundle", lambda path, out: export_session(path, session, out)
    )


async def pending_version(request: web.Request) -> web.Response:
    if _signed_in(request) is None:
        return web.json_response({"error": "sign in"}, status=401)
    governance = request.app[gateway.GOVERNANCE]
    return web.json_response({"version": _version(governance.queue.pending(governance.clock()))})


# -- sign in and out ----------------------------------------------------------------------


async def login_page(request: web.Request) -> web.StreamResponse:
    return _login_form(request, error=None, status=200)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not _same_origin(request) or not expected or not same_token(form.get("csrf"), expected):
        return _login_form(request, error="The sign-in form expired; try again.", status=403)
    try:
        principal = request.app[gateway.KEYS].authenticate(str(form.get("key", "")).strip())
    except AegisError:
        log.info(json.dumps({"msg": "console sign-in refused", "why": "unknown key"}))
        return _login_form(request, error="That key is not known.", status=401)
    if not principal.has(*CONSOLE_ROLES):
        log.info(json.dumps({"msg": "console sign-in refused", "principal": principal.name}))
        return _login_form(
            request, error="The console is for reviewers, auditors and admins.", status=403
        )
    token, _ = request.app[LOGINS].start(principal)
    log.info(json.dumps({"msg": "console sign-in", "principal": principal.name}))
    response = _redirect("/console/")
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(request.app[LOGINS].ttl),
        path="/console",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    response.del_cookie(LOGIN_COOKIE, path="/console")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    found = _signed_in(request)
    if found is not None:
        form = await request.post()
        if not _same_origin(request) or not same_token(form.get("csrf"), found[1].csrf):
            return _problem(request, found[1], 403, "The form expired; reload the page.")
        request.app[LOGINS].end(found[0])
    response = _redirect("/console/login")
    response.del_cookie(COOKIE, path="/console")
    return response


# -- deciding -----------------------------------------------------------------------------


@signed_in
async def decide(request: web.Request, signed: Login) -> web.StreamResponse:
    form = await request.post()
    if not _same_origin(request) or not same_token(form.get("csrf"), signed.csrf):
        return _problem(request, signed, 403, "The form expired or came from another site.")
    approval_id = request.match_info["id"]
    approved = request.match_info["verb"] == "approve"
    comment = str(form.get("comment", "")).strip() or None
    governance = request.app[gateway.GOVERNANCE]
    try:
        decided, evidence = await governance.decide(
            approval_id, signed.principal, approved=approved, comment=comment
        )
    except AegisError as e:
        status = 403 if e.reference in ("approval-forbidden", "forbidden") else 409
        status = 404 if e.reference == "approval-unknown" else status
        return _problem(request, signed, status, e.message)
    log.info(
        json.dumps(
            {
                "msg": "console decision",
                "envelope_id": approval_id,
                "status": decided.status,
                "reviewer": signed.principal.name,
                "evidence_hash": evidence,
            }
        )
    )
    return _redirect(f"/console/?decided={approval_id}&status={decided.status}")


# -- helpers ------------------------------------------------------------------------------


def _signed_in(request: web.Request) -> tuple[str, Login] | None:
    token = request.cookies.get(COOKIE)
    login = request.app[LOGINS].get(token)
    return None if login is None or token is None else (token, login)


def _secure(request: web.Request) -> bool:
    """Cookies only over TLS when the console is reached over TLS, including through a
    proxy that terminates it (the service's public URL is https)."""
    return request.secure or request.app[gateway.BASE_URL].startswith("https://")


def _path_session(request: web.Request) -> str | None:
    try:
        return validate_session_id(request.match_info["id"])
    except AegisError:
        return None


def _same_origin(request: web.Request) -> bool:
    """Whether a POST comes from the console's own pages.

    A browser sends ``Origin`` (and ``Sec-Fetch-Site``) with every form post: another
    site's origin, or ``null``, is refused. A client without them (no browser) is
    judged by the CSRF token alone.
    """
    origin = request.headers.get("Origin")
    public = urlsplit(request.app[gateway.BASE_URL])
    ours = {f"{request.scheme}://{request.host}", f"{public.scheme}://{public.netloc}"}
    if origin is not None and origin not in ours:
        return False
    return request.headers.get("Sec-Fetch-Site", "same-origin") == "same-origin"


def _render(
    request: web.Request, name: str, signed: Login | None, *, status: int = 200, **context: Any
) -> web.Response:
    def static(filename: str) -> str:
        return str(request.app.router[STATIC].url_for(filename=filename))

    html = templates.get_template(name).render(signed=signed, static=static, **context)
    return web.Response(text=html, content_type="text/html", status=status)


def _problem(request: web.Request, signed: Login, status: int, message: str) -> web.Response:
    return _render(request, "problem.html", signed, status=status, message=message)


def _login_form(request: web.Request, *, error: str | None, status: int) -> web.Response:
    csrf = secrets.token_urlsafe(32)
    response = _render(request, "login.html", None, status=status, csrf=csrf, error=error)
    response.set_cookie(
        LOGIN_COOKIE,
        csrf,
        max_age=1800,
        path="/console",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    return response


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path == "/console" or request.path.startswith("/console/"):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        # same-origin, not no-referrer: under no-referrer a browser's form posts carry
        # "Origin: null", and the same-origin check below needs the real origin.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.path.startswith("/console/static/"):
            response.headers["Cache-Control"] = "no-store"


def _version(pending: list[Approval]) -> str:
    ids = ",".join(sorted(a.approval_id for a in pending))
    return hashlib.sha256(ids.encode()).hexdigest()[:16]


def _approval_view(approval: Approval, now: datetime) -> dict[str, Any]:
    envelope = approval.envelope
    return {
        "id": approval.approval_id,
        "agent": envelope.actor.agent,
        "principal": envelope.actor.principal,
        "session": envelope.session,
        "tool": envelope.tool,
        "target": envelope.target,
        "parameters": dict(envelope.parameters),
        "justification": envelope.justification,
        "rule": approval.rule,
        "reason": approval.reason,
        "queued_at": approval.queued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires_at": approval.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "waited": int((now - approval.queued_at).total_seconds()),
        "approvers": list(approval.approvers),
    }


def _entry_view(stored: Any) -> dict[str, Any]:
    view = gateway.entry_json(stored)
    view["credential"] = view["body"].get("credential") if view["type"] == "decision" else None
    return view
