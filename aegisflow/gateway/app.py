"""The aiohttp application: routes, authentication, and the one place errors become HTTP.

Handlers only translate: they authenticate, parse JSON, call
:class:`~aegisflow.service.Governance`, and shape the answer as the walkthrough shows it.
Decisions (allow, block, review) are answered with 200 and the JSON-RPC style ``error``
object the agent bridge relays (``-32001`` block, ``-32002`` approval required); HTTP
errors are for requests that could not be decided at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from aegisflow.approvals import (
    Approval,
    ApprovalError,
    ApprovalForbidden,
    Principal,
    UnknownApproval,
)
from aegisflow.auth import ApiKeys, Unauthenticated
from aegisflow.envelope import PROTOCOLS, check_tool
from aegisflow.errors import (
    AegisError,
    InputError,
    OperationalError,
    SessionClosed,
    UnknownSession,
)
from aegisflow.gateway import openapi
from aegisflow.gateway.metrics import CONTENT_TYPE, Metrics
from aegisflow.ledger.bundle import ExportInfo, export_all, export_session
from aegisflow.ledger.entry import validate_session_id
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.reading import StoredEntry, list_sessions, session_entries
from aegisflow.ledger.verify import Report, verify_repository
from aegisflow.service import (
    MAX_RESULT_BATCH,
    ActionOutcome,
    Governance,
    ResultUnexpected,
    default_session,
)

GOVERNANCE = web.AppKey("governance", Governance)
METRICS = web.AppKey("metrics", Metrics)
KEYS = web.AppKey("keys", ApiKeys)
BASE_URL = web.AppKey("base_url", str)
MAX_BODY = 1 << 20
MAX_TOOLS = 10_000
CHUNK = 1 << 16
BLOCK_CODE = -32001
REVIEW_CODE = -32002
SESSION_HEADER = "X-AegisFlow-Session"

log = logging.getLogger("aegisflow.actions")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Forbidden(AegisError):
    reference = "forbidden"


def create_app(
    governance: Governance,
    keys: ApiKeys,
    *,
    base_url: str,
    idle_timeout: timedelta | None = None,
    sweep_every: float = 60.0,
) -> web.Application:
    """The gateway application (see the module docstring for its contract).

    Every ``sweep_every`` seconds the service prunes settled approvals and, with
    ``idle_timeout``, closes the sessions idle for longer (:meth:`Governance.sweep`).
    """
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY)
    app[GOVERNANCE] = governance
    app[KEYS] = keys
    app[BASE_URL] = base_url.rstrip("/")
    app[METRICS] = Metrics.create()
    governance.on_append = app[METRICS].append.observe
    app.cleanup_ctx.append(_sweeper(governance, idle_timeout, sweep_every))
    app.router.add_get("/health", health)
    app.router.add_get("/openapi.json", openapi_route)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/admin/v1/sessions/{id}/close", close_session)
    app.router.add_get("/admin/v1/sessions", list_sessions_route)
    app.router.add_get("/admin/v1/sessions/{id}", show_session)
    app.router.add_get("/admin/v1/sessions/{id}/export", export_session_route)
    app.router.add_get("/admin/v1/evidence/export", export_ledger_route)
    app.router.add_get("/admin/v1/evidence/verify", verify_route)
    app.router.add_post("/admin/v1/test-action", action)
    app.router.add_post("/v1/actions", action)
    app.router.add_post("/v1/actions/{id}/result", action_result)
    app.router.add_post("/v1/calls/{id}/result", call_result)
    app.router.add_post("/v1/results", results)
    app.router.add_post("/v1/tools/hidden", hidden_tools)
    app.router.add_get("/admin/v1/approvals", list_approvals)
    app.router.add_get("/admin/v1/approvals/{id}", show_approval)
    app.router.add_post("/admin/v1/approvals/{id}/approve", approve)
    app.router.add_post("/admin/v1/approvals/{id}/deny", deny)
    # Both build on this module: imported here, once it is complete.
    from aegisflow.channels import graphql  # noqa: PLC0415
    from aegisflow.console import web as console  # noqa: PLC0415

    graphql.mount(app)
    console.mount(app)
    return app


# -- handlers -----------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    governance = request.app[GOVERNANCE]
    return web.json_response(
        {
            "status": "ok",
            "policy": governance.policy.name,
            "policy_hash": governance.policy.content_hash,
            "ledger_entries": governance.ledger.size,
            "pending_approvals": len(governance.queue.pending(governance.clock())),
        }
    )


async def openapi_route(_request: web.Request) -> web.Response:
    return web.json_response(openapi.document())


async def action(request: web.Request) -> web.Response:
    principal = authorize(request, "agent", "admin")
    started = time.perf_counter()
    data = await read_json(request)
    session = request.headers.get(SESSION_HEADER)
    if session is not None:
        validate_session_id(session)
    outcome = await request.app[GOVERNANCE].act(data, principal, session=session)
    elapsed = time.perf_counter() - started
    latency_us = int(elapsed * 1e6)
    observed = request.app[METRICS]
    observed.decisions.labels(outcome.decision.decision, outcome.envelope.protocol).inc()
    observed.latency.observe(elapsed)
    _log_line(
        "action evaluated",
        envelope_id=outcome.envelope.envelope_id,
        tool=outcome.envelope.tool,
        decision=outcome.decision.decision,
        latency_us=latency_us,
    )
    return web.json_response(_action_json(outcome, request.app[BASE_URL]))


async def action_result(request: web.Request) -> web.Response:
    """The caller's report of what an allowed call it ran itself returned."""
    principal = authorize(request, "agent", "admin")
    data = await read_json(request)
    evidence = await request.app[GOVERNANCE].record_result(
        request.match_info["id"], principal, data
    )
    return web.json_response({"envelope_id": request.match_info["id"], "evidence_hash": evidence})


async def results(request: web.Request) -> web.Response:
    """Several such reports at once (the MCP bridge sends what a moment collected).

    Each is checked and answered on its own; those accepted share one durable write,
    which keeps a stream of results from queueing in front of the next decision.
    """
    principal = authorize(request, "agent", "admin")
    data = await read_json(request)
    known(data, {"results"}, "fields")
    reports = data.get("results")
    if not isinstance(reports, list) or not 0 < len(reports) <= MAX_RESULT_BATCH:
        raise InputError(f"results must be a list of 1 to {MAX_RESULT_BATCH} result reports")
    governance = request.app[GOVERNANCE]

    async def record(report: object) -> dict[str, Any]:
        named = report.get("envelope_id") if isinstance(report, Mapping) else None
        envelope_id = named if isinstance(named, str) else None
        try:
            if not isinstance(report, Mapping) or envelope_id is None:
                raise InputError("each result must be an object naming its envelope_id")
            fields = {k: v for k, v in report.items() if k != "envelope_id"}
            evidence = await governance.record_result(envelope_id, principal, fields)
        except AegisError as e:
            return {"envelope_id": envelope_id, "error": _error_json(e)}
        return {"envelope_id": envelope_id, "evidence_hash": evidence}

    return web.json_response({"results": await asyncio.gather(*map(record, reports))})


async def call_result(request: web.Request) -> web.Response:
    """The same report, for the call the caller named with ``call_id`` in this session."""
    principal = authorize(request, "agent", "admin")
    data = await read_json(request)
    session = request.headers.get(SESSION_HEADER)
    session = validate_session_id(session) if session is not None else default_session(principal)
    governance = request.app[GOVERNANCE]
    envelope_id = governance.called(request.match_info["id"], principal, session)
    evidence = await governance.record_result(envelope_id, principal, data)
    return web.json_response({"envelope_id": envelope_id, "evidence_hash": evidence})


async def hidden_tools(request: web.Request) -> web.Response:
    """Which of ``tools`` the policy blocks in every case (for an MCP ``tools/list``)."""
    authorize(request, "agent", "admin")
    data = await read_json(request)
    known(data, {"protocol", "tools"}, "fields")
    protocol, tools = data.get("protocol", "mcp"), data.get("tools")
    if protocol not in PROTOCOLS:
        raise InputError(f"protocol must be one of {', '.join(PROTOCOLS)}")
    if not isinstance(tools, list) or len(tools) > MAX_TOOLS:
        raise InputError(f"tools must be a list of at most {MAX_TOOLS} tool names")
    policy = request.app[GOVERNANCE].policy
    hidden = [t for t in tools if policy.always_blocks(protocol, check_tool(t))]
    return web.json_response({"hidden": hidden})


async def metrics(request: web.Request) -> web.Response:
    authorize(request, "admin", "auditor")
    governance, observed = request.app[GOVERNANCE], request.app[METRICS]
    observed.pending.set(len(governance.queue.pending(governance.clock())))
    observed.ledger_entries.set(governance.ledger.size)
    return web.Response(body=observed.render(), headers={"Content-Type": CONTENT_TYPE})


async def close_session(request: web.Request) -> web.Response:
    """Write the session's signed manifest; later actions in it are refused."""
    principal = authorize(request, "agent", "admin")
    session = validate_session_id(request.match_info["id"])
    receipt = await request.app[GOVERNANCE].close_session(session, by=principal)
    return web.json_response(
        {"session": session, "closed": True, "manifest_entry_hash": receipt.entry_hash}
    )


def ledger_path(request: web.Request) -> Path:
    storage = request.app[GOVERNANCE].ledger.storage
    path = getattr(storage, "path", None)
    if not isinstance(path, Path):
        raise OperationalError("this ledger has no repository on disk to read or export")
    return path


def read_only(path: Path, work: Callable[[GitStorage], Any]) -> Any:
    # A storage of its own per request: the writer's thread keeps the ledger's.
    storage = GitStorage(path)
    try:
        return work(storage)
    finally:
        storage.close()


async def list_sessions_route(request: web.Request) -> web.Response:
    authorize(request, "admin", "auditor")
    path = ledger_path(request)
    infos = await asyncio.get_running_loop().run_in_executor(None, read_only, path, list_sessions)
    return web.json_response(
        {
            "sessions": [
                {
                    "session": i.session,
                    "entries": i.entries,
                    "last_type": i.last_type,
                    "last_time": i.last_time,
                    "closed": i.closed,
                }
                for i in infos
            ]
        }
    )


async def show_session(request: web.Request) -> web.Response:
    authorize(request, "admin", "auditor")
    session = validate_session_id(request.match_info["id"])
    path = ledger_path(request)
    stored = await asyncio.get_running_loop().run_in_executor(
        None, read_only, path, lambda storage: session_entries(storage, session)
    )
    return web.json_response({"session": session, "entries": [entry_json(s) for s in stored]})


def entry_json(stored: StoredEntry) -> dict[str, Any]:
    """One ledger entry as the evidence routes (and the console and GraphQL) show it."""
    entry = stored.entry
    return {
        "index": entry.index,
        "seq": entry.seq,
        "type": entry.type,
        "time": entry.time,
        "entry_hash": stored.entry_hash.hex(),
        "body": dict(entry.body),
    }


async def export_session_route(request: web.Request) -> web.StreamResponse:
    """The session as a git bundle (for ``aegisctl evidence verify --bundle``)."""
    authorize(request, "admin", "auditor")
    session = validate_session_id(request.match_info["id"])
    return await stream_bundle(
        request, f"{session}.bundle", lambda path, out: export_session(path, session, out)
    )


async def export_ledger_route(request: web.Request) -> web.StreamResponse:
    """The whole ledger as a git bundle."""
    authorize(request, "admin", "auditor")
    return await stream_bundle(request, "ledger.bundle", export_all)


async def verify_route(request: web.Request) -> web.Response:
    """Replay the ledger against the service's own key (``?session=`` adds its lines).

    This checks the ledger as the service holds it; an auditor's independent check is
    ``aegisctl evidence verify --bundle`` offline, with the key obtained out of band.
    """
    authorize(request, "admin", "auditor")
    known(request.query, {"session"}, "query parameters")
    session = request.query.get("session")
    if session is not None:
        validate_session_id(session)
    report = await verify_ledger(request, session)
    data: dict[str, Any] = report.to_dict()
    if session is not None:
        summary = report.sessions.get(session)
        if summary is None:
            raise UnknownSession(f"no session {session!r} in this ledger")
        data["lines"] = summary.lines
    return web.json_response(data)


async def verify_ledger(
    request: web.Request, session: str | None, *, fresh: bool = False, timeout: float = 10.0
) -> Report:
    """Replay the ledger as the service holds it against the service's own key.

    With ``fresh``, entries not yet under a signed checkpoint get one first (waiting at
    most ``timeout`` seconds), so the report covers what was just written.
    """
    ledger = request.app[GOVERNANCE].ledger

    def replay(storage: GitStorage) -> Report:
        if fresh and ledger.uncovered:
            ledger.checkpoint(timeout=timeout)
        return verify_repository(storage, [ledger.public_key], session=session)

    path = ledger_path(request)
    report: Report = await asyncio.get_running_loop().run_in_executor(None, read_only, path, replay)
    return report


async def stream_bundle(
    request: web.Request, filename: str, export: Callable[[Path, Path], ExportInfo]
) -> web.StreamResponse:
    """Export under a fresh signed checkpoint into a temporary file and stream it out."""
    path = ledger_path(request)
    ledger = request.app[GOVERNANCE].ledger
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="aegisflow-export-") as tmp:
        out = Path(tmp) / filename

        def write() -> ExportInfo:
            ledger.checkpoint()  # so the bundle proves everything written so far
            return export(path, out)

        info = await loop.run_in_executor(None, write)
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": f'attachment; filename="{filename}"',
            }
        )
        response.content_length = info.bytes
        await response.prepare(request)
        with out.open("rb") as stream:
            while chunk := await loop.run_in_executor(None, stream.read, CHUNK):
                await response.write(chunk)
        await response.write_eof()
    return response


async def list_approvals(request: web.Request) -> web.Response:
    authorize(request, "agent", "reviewer", "admin", "auditor")
    governance = request.app[GOVERNANCE]
    pending = governance.queue.pending(governance.clock())
    return web.json_response({"pending": [_pending_json(a) for a in pending]})


async def show_approval(request: web.Request) -> web.Response:
    authorize(request, "agent", "reviewer", "admin", "auditor")
    approval = request.app[GOVERNANCE].queue.get(request.match_info["id"])
    return web.json_response(approval.to_dict())


async def approve(request: web.Request) -> web.Response:
    return await _decide(request, approved=True)


async def deny(request: web.Request) -> web.Response:
    return await _decide(request, approved=False)


async def _decide(request: web.Request, *, approved: bool) -> web.Response:
    principal = authorize(request, "reviewer", "admin")
    data = await read_json(request, allow_empty=True)
    known(data, {"comment", "reviewer", "reason"}, "fields")
    comment = data.get("comment", data.get("reason"))
    reviewer = data.get("reviewer")
    if reviewer is not None and not isinstance(reviewer, str):
        raise InputError("reviewer must be a string")
    decided, evidence = await request.app[GOVERNANCE].decide(
        request.match_info["id"],
        principal,
        approved=approved,
        comment=comment,
        reviewer=reviewer,
    )
    stamp = "approved_at" if approved else "denied_at"
    out: dict[str, Any] = {
        "envelope_id": decided.approval_id,
        "status": decided.status,
        "reviewer": decided.reviewer,
        stamp: decided.to_dict()["decided_at"],
    }
    if decided.comment:
        out["comment"] = decided.comment
    out["evidence_hash"] = evidence
    return web.json_response(out)


# -- shaping --------------------------------------------------------------------------------


def _action_json(outcome: ActionOutcome, base_url: str) -> dict[str, Any]:
    envelope, decision = outcome.envelope, outcome.decision
    out: dict[str, Any] = {
        "envelope_id": envelope.envelope_id,
        "decision": decision.decision,
        "matched_rule": decision.matched_rule,
        "policy": decision.policy,
    }
    if decision.decision == "block":
        data: dict[str, Any] = {"reason": decision.reason}
        if decision.suggested_alternative:
            data["suggested_alternative"] = decision.suggested_alternative
        message = (
            f"approval refused: {outcome.refusal}"
            if outcome.refusal
            else f"policy: {envelope.tool} is blocked by {decision.policy} policy"
        )
        out["error"] = {"code": BLOCK_CODE, "message": message, "data": data}
    elif decision.decision == "review":
        queued = outcome.queued_at
        review: dict[str, Any] = {
            "approval_url": f"{base_url}/admin/v1/approvals/{envelope.envelope_id}",
            "queued_at": queued.strftime("%Y-%m-%dT%H:%M:%SZ") if queued else None,
        }
        if len(outcome.parked) > 1:
            review["approval_ids"] = list(outcome.parked)
        out["error"] = {
            "code": REVIEW_CODE,
            "message": "approval required: action queued for human review",
            "data": review,
        }
    if outcome.grant is not None:
        out["credential"] = {k: outcome.grant[k] for k in ("type", "scope", "expires_in")}
        if outcome.token is not None:
            out["credential"]["token"] = outcome.token
    if outcome.execution is not None:
        out["result"] = dict(outcome.execution.result)
    out["evidence_hash"] = outcome.evidence_hash
    return out


def _pending_json(approval: Approval) -> dict[str, Any]:
    full = approval.to_dict()
    keys = ("envelope_id", "actor", "tool", "target", "parameters", "queued_at", "justification")
    return {k: full[k] for k in keys if k in full}


# -- plumbing -------------------------------------------------------------------------------


def _log_line(msg: str, **fields: object) -> None:
    """One JSON log line: ``ts``, ``level``, ``msg`` and the fields (never a secret)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    log.info(json.dumps({"ts": stamp, "level": "info", "msg": msg, **fields}))


def _sweeper(
    governance: Governance, idle: timedelta | None, every: float
) -> Callable[[web.Application], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def run(_app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(every)
                try:
                    closed = await governance.sweep(idle)
                except Exception:  # the next round tries again; requests are unaffected
                    logging.getLogger("aegisflow.gateway").exception("sweep failed")
                    continue
                for session in closed:
                    _log_line("session closed (idle)", session=session)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return run


def authorize(request: web.Request, *roles: str) -> Principal:
    principal = request.app[KEYS].authenticate(request.headers.get("X-API-Key"))
    if not principal.has(*roles):
        raise Forbidden(f"{principal.name} lacks the role for this route ({', '.join(roles)})")
    return principal


def known(given: Iterable[object], allowed: set[str], what: str) -> None:
    """Refuse names outside ``allowed`` (an unknown field is a mistake, not an extra)."""
    unknown = {str(name) for name in given} - allowed
    if unknown:
        raise InputError(f"unknown {what}: {', '.join(sorted(unknown))}")


async def read_json(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw and allow_empty:
        return {}
    try:
        data = _DECODER.decode(raw.decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"the body is not valid JSON: {e}") from None
    except RecursionError:
        raise InputError("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise InputError("the body must be a JSON object")
    return data


def _number(text: str) -> int | float:
    """``1.0`` and ``1e3`` are the integers RFC 8785 writes them as; other floats stay
    floats, which the ledger refuses (they have no single canonical form here)."""
    value = float(text)
    if value.is_integer() and abs(value) <= 2**53 - 1:
        return int(value)
    return value


_DECODER = json.JSONDecoder(parse_float=_number)

_STATUS: tuple[tuple[type[AegisError], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),
    (ApprovalForbidden, 403),
    (UnknownApproval, 404),
    (UnknownSession, 404),
    (ResultUnexpected, 404),
    (ApprovalError, 409),
    (SessionClosed, 409),
    (InputError, 400),
    (OperationalError, 503),
)


def _status(error: AegisError) -> int:
    return next((code for kind, code in _STATUS if isinstance(error, kind)), 400)


def _error_json(error: AegisError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.reference, "message": error.message}
    if error.hint:
        body["hint"] = error.hint
    return body


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place errors become HTTP: JSON bodies, never a traceback."""
    try:
        return await handler(request)
    except AegisError as e:
        return web.json_response({"error": _error_json(e)}, status=_status(e))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        allow = {"Allow": e.headers["Allow"]} if "Allow" in e.headers else None
        return web.json_response(
            {"error": {"code": "http", "message": e.reason}}, status=e.status, headers=allow
        )
    except Exception:
        logging.getLogger("aegisflow.gateway").exception("unexpected error")
        return web.json_response(
            {"error": {"code": "internal", "message": "internal error; see the server log"}},
            status=500,
        )
