"""The GraphQL admin API: ``POST /admin/graphql``, on graphql-core.

Queries for approvals (pending, by id, history), sessions and their entries, and
verification; mutations ``approve`` and ``deny``. The same API keys and roles as the REST
API, and the same :meth:`Governance.decide` behind the mutations, so the same separation
of duties, single use and ledger entries. Introspection is for admins only. A query is
refused before it runs if it is over :data:`MAX_QUERY` bytes, :data:`MAX_TOKENS` tokens
or :data:`MAX_DEPTH` levels deep, or asks for more than :data:`MAX_FIELDS` fields.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import ASTValidationContext

from aegisflow.approvals import Approval, Principal
from aegisflow.errors import AegisError
from aegisflow.gateway import app as gateway
from aegisflow.ledger.entry import validate_session_id
from aegisflow.ledger.reading import list_sessions, session_entries

MAX_QUERY = 8192
MAX_TOKENS = 2000
MAX_DEPTH = 6
MAX_FIELDS = 200
HISTORY = 100

log = logging.getLogger("aegisflow.graphql")

SDL = """
"An action a policy sent to a human, and what became of it."
type Approval {
  id: ID!
  tool: String!
  target: String!
  "The tool's parameters as JSON text (agent input: untrusted)."
  parameters: String!
  agent: String!
  principal: String!
  session: String!
  justification: String
  rule: String!
  reason: String!
  status: String!
  queuedAt: String!
  expiresAt: String!
  reviewer: String
  comment: String
  decidedAt: String
}

type Session {
  id: ID!
  entries: Int!
  lastType: String!
  lastTime: String!
  closed: Boolean!
}

type Entry {
  index: Int!
  seq: Int!
  type: String!
  time: String!
  hash: String!
  "The entry's body as JSON text."
  body: String!
}

type SessionDetail {
  id: ID!
  entries: [Entry!]!
}

type Verification {
  valid: Boolean!
  totalEntries: Int!
  checkpoints: Int!
  findings: [String!]!
  "The session's verify lines, when a session was named."
  lines: [String!]!
}

type Decided {
  id: ID!
  status: String!
  reviewer: String!
  evidenceHash: String!
}

type Query {
  pendingApprovals: [Approval!]!
  approval(id: ID!): Approval
  "Approvals decided or used lately (the queue's window), newest first."
  approvalHistory(limit: Int = 50): [Approval!]!
  sessions: [Session!]!
  session(id: ID!): SessionDetail
  verification(session: ID): Verification!
}

type Mutation {
  approve(id: ID!, comment: String): Decided!
  deny(id: ID!, comment: String): Decided!
}
"""

SCHEMA: GraphQLSchema = build_schema(SDL)
READERS = ("agent", "reviewer", "admin", "auditor")
EVIDENCE = ("admin", "auditor")


class Denied(GraphQLError):
    """A field the caller's role may not read."""


EXPENSIVE = {"verification": 1, "session": 10, "sessions": 2}
"""Fields that read the ledger, and how many of each one query may ask for."""


def limits_rule(principal: Principal) -> type[ASTValidationRule]:
    """Depth, breadth, ledger-reading fields and introspection as one validation rule."""

    class Limits(ASTValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            counts: dict[str, int] = {}
            depth, fields = _measure(node.selection_set, self.context, (), counts)
            if depth > MAX_DEPTH:
                self.report_error(
                    GraphQLError(f"query is {depth} levels deep; at most {MAX_DEPTH}", node)
                )
            if fields > MAX_FIELDS:
                self.report_error(
                    GraphQLError(f"query asks for {fields} fields; at most {MAX_FIELDS}", node)
                )
            for name, most in EXPENSIVE.items():
                if counts.get(name, 0) > most:
                    self.report_error(
                        GraphQLError(
                            f"query asks for {name} {counts[name]} times; at most {most}", node
                        )
                    )

        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.name.value in ("__schema", "__type") and not principal.has("admin"):
                self.report_error(GraphQLError("introspection is for admins", node))

    return Limits


def _measure(
    selection: SelectionSetNode | None,
    context: ASTValidationContext,
    path: tuple[str, ...],
    counts: dict[str, int],
) -> tuple[int, int]:
    """(depth, field count) of a selection set, every fragment spread counted where it is
    spread (aliases repeat work); ``path`` holds the fragments being expanded, so a
    fragment cycle (which validation reports) does not recurse forever."""
    if selection is None:
        return 0, 0
    depth, fields = 0, 0
    for node in selection.selections:
        if isinstance(node, FieldNode):
            counts[node.name.value] = counts.get(node.name.value, 0) + 1
            inner, count = _measure(node.selection_set, context, path, counts)
            depth, fields = max(depth, inner + 1), fields + count + 1
        elif isinstance(node, InlineFragmentNode):
            inner, count = _measure(node.selection_set, context, path, counts)
            depth, fields = max(depth, inner), fields + count
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in path:
            fragment: FragmentDefinitionNode | None = context.get_fragment(node.name.value)
            if fragment is not None:
                inner, count = _measure(
                    fragment.selection_set, context, (*path, node.name.value), counts
                )
                depth, fields = max(depth, inner), fields + count
        if fields > MAX_FIELDS * 10:  # far past the limit already: stop counting
            break
    return depth, fields


async def graphql_route(request: web.Request) -> web.Response:
    """``POST /admin/graphql`` with ``{"query", "variables"?, "operationName"?}``."""
    principal = gateway.authorize(request, *READERS)
    data = await gateway.read_json(request)
    gateway.known(data, {"query", "variables", "operationName"}, "fields")
    query, variables, operation = (
        data.get("query"),
        data.get("variables"),
        data.get("operationName"),
    )
    if not isinstance(query, str) or not query.strip():
        return _errors(["query must be a non-empty string"])
    if len(query.encode()) > MAX_QUERY:
        return _errors([f"query is over {MAX_QUERY} bytes"])
    if variables is not None and not isinstance(variables, dict):
        return _errors(["variables must be an object"])
    if operation is not None and not isinstance(operation, str):
        return _errors(["operationName must be a string"])
    try:
        document: DocumentNode = parse(query, max_tokens=MAX_TOKENS, no_location=False)
    except GraphQLError as e:
        return _errors([e.message])
    problems = validate(SCHEMA, document, [*specified_rules, limits_rule(principal)])
    if problems:
        return _errors([e.message for e in problems])
    result = execute(
        SCHEMA,
        document,
        root_value=Root(request, principal),
        variable_values=variables,
        operation_name=operation,
    )
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        result = await result
    out: dict[str, Any] = {"data": result.data}  # type: ignore[union-attr]
    if result.errors:  # type: ignore[union-attr]
        out["errors"] = [_public(e) for e in result.errors]  # type: ignore[union-attr]
    return web.json_response(out)


def _public(error: GraphQLError) -> dict[str, Any]:
    """A resolver's error as the caller may see it: ours verbatim, anything else generic
    (an unexpected exception's text can name paths or internals)."""
    original = error.original_error
    known = original is None or isinstance(original, (AegisError, GraphQLError))
    if not known:
        log.warning(
            json.dumps({"msg": "graphql resolver failed", "error": type(original).__name__})
        )
    message = error.message if known else "internal error; see the service log"
    return {"message": message, "path": error.path}


def _errors(messages: list[str]) -> web.Response:
    return web.json_response({"errors": [{"message": m} for m in messages]}, status=400)


class Root:
    """The resolvers: attributes named like the schema's root fields."""

    def __init__(self, request: web.Request, principal: Principal) -> None:
        self.request = request
        self.principal = principal
        self.governance = request.app[gateway.GOVERNANCE]

    # -- approvals (any role, as GET /admin/v1/approvals) --

    def pendingApprovals(self, _info: Any) -> list[dict[str, Any]]:  # noqa: N802 - schema name
        now = self.governance.clock()
        pending = sorted(
            self.governance.queue.pending(now), key=lambda a: a.queued_at, reverse=True
        )
        return [_approval(a) for a in pending]

    def approval(self, _info: Any, id: str) -> dict[str, Any] | None:
        try:
            return _approval(self.governance.queue.get(id))
        except AegisError:
            return None

    def approvalHistory(self, _info: Any, limit: int = 50) -> list[dict[str, Any]]:  # noqa: N802
        decided = [a for a in self.governance.queue.all() if a.status != "pending"]
        decided.sort(key=lambda a: a.decided_at or a.queued_at, reverse=True)
        return [_approval(a) for a in decided[: max(0, min(limit, HISTORY))]]

    # -- evidence (admin, auditor, as the REST evidence routes) --

    async def sessions(self, _info: Any) -> list[dict[str, Any]]:
        self._evidence()
        infos = await self._read(list_sessions)
        return [
            {
                "id": i.session,
                "entries": i.entries,
                "lastType": i.last_type,
                "lastTime": i.last_time,
                "closed": i.closed,
            }
            for i in infos
        ]

    async def session(self, _info: Any, id: str) -> dict[str, Any] | None:
        self._evidence()
        session = validate_session_id(id)
        try:
            stored = await self._read(lambda storage: session_entries(storage, session))
        except AegisError:
            return None
        return {"id": session, "entries": [_entry(s) for s in stored]}

    async def verification(self, _info: Any, session: str | None = None) -> dict[str, Any]:
        self._evidence()
        if session is not None:
            validate_session_id(session)
        report = await gateway.verify_ledger(self.request, session)
        summary = report.sessions.get(session) if session else None
        return {
            "valid": report.valid,
            "totalEntries": report.total_entries,
            "checkpoints": report.checkpoints,
            "findings": [json.dumps(f.to_dict(), sort_keys=True) for f in report.findings[:100]],
            "lines": summary.lines if summary else [],
        }

    # -- mutations (reviewer, admin; the queue enforces the rest) --

    async def approve(self, _info: Any, id: str, comment: str | None = None) -> dict[str, Any]:
        return await self._decide(id, approved=True, comment=comment)

    async def deny(self, _info: Any, id: str, comment: str | None = None) -> dict[str, Any]:
        return await self._decide(id, approved=False, comment=comment)

    async def _decide(
        self, approval_id: str, *, approved: bool, comment: str | None
    ) -> dict[str, Any]:
        if not self.principal.has("reviewer", "admin"):
            raise Denied("only reviewers and admins approve or deny")
        try:
            decided, evidence = await self.governance.decide(
                approval_id, self.principal, approved=approved, comment=comment
            )
        except AegisError as e:
            raise GraphQLError(e.message, extensions={"code": e.reference}) from None
        return {
            "id": decided.approval_id,
            "status": decided.status,
            "reviewer": decided.reviewer or self.principal.name,
            "evidenceHash": evidence,
        }

    def _evidence(self) -> None:
        if not self.principal.has(*EVIDENCE):
            raise Denied("sessions and verification are for admins and auditors")

    async def _read(self, work: Any) -> Any:
        path = gateway.ledger_path(self.request)
        return await asyncio.get_running_loop().run_in_executor(None, gateway.read_only, path, work)


def _entry(stored: Any) -> dict[str, Any]:
    """The REST view of an entry, with the schema's names: ``hash``, and ``body`` as JSON text."""
    view = gateway.entry_json(stored)
    view["hash"] = view.pop("entry_hash")
    view["body"] = json.dumps(view["body"], sort_keys=True)
    return view


def _approval(approval: Approval) -> dict[str, Any]:
    envelope = approval.envelope
    return {
        "id": approval.approval_id,
        "tool": envelope.tool,
        "target": envelope.target,
        "parameters": json.dumps(dict(envelope.parameters), sort_keys=True),
        "agent": envelope.actor.agent,
        "principal": envelope.actor.principal,
        "session": envelope.session,
        "justification": envelope.justification or None,
        "rule": approval.rule,
        "reason": approval.reason,
        "status": approval.status,
        "queuedAt": _time(approval.queued_at),
        "expiresAt": _time(approval.expires_at),
        "reviewer": approval.reviewer,
        "comment": approval.comment,
        "decidedAt": _time(approval.decided_at) if approval.decided_at else None,
    }


def _time(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


def mount(app: web.Application) -> None:
    app.router.add_post("/admin/graphql", graphql_route)
