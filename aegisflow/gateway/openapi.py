"""The OpenAPI 3.1 document of the gateway, served at ``/openapi.json``.

Written by hand next to the routes it describes; ``docs/openapi.json`` is a copy, and a
test keeps the two and the router in step. Regenerate the copy with
``.venv/bin/python -m aegisflow.gateway.openapi > docs/openapi.json``.
"""

from __future__ import annotations

import json
from typing import Any

from aegisflow import __version__
from aegisflow.envelope import CAPABILITIES, MAX_TARGET, MAX_TEXT, MAX_TOOL, PROTOCOLS
from aegisflow.service import MAX_RESULT_BATCH

SESSION_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$"
"""Session ids as the ledger takes them (no ``..``, no trailing ``.``; ``.lock`` is refused
by the service though the pattern allows it)."""
TOOL = r"^[!-~]+$"
NAME = r"^[A-Za-z0-9][A-Za-z0-9._@:/+-]*$"
SAFE_INT = 2**53 - 1
UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"

Schema = dict[str, Any]
_SESSION: Schema = {"type": "string", "pattern": SESSION_ID, "maxLength": 128}
_UUID: Schema = {"type": "string", "pattern": UUID}
_HASH: Schema = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: list[str], properties: dict[str, Schema], *, closed: bool = True) -> Schema:
    out: Schema = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if closed:
        out["additionalProperties"] = False
    return out


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Schema]:
    text = {
        400: "Malformed JSON, wrong types, unknown fields, hostile ids",
        401: "Missing or unknown X-API-Key",
        403: "The key's role may not use this route",
        404: "No such approval or session",
        409: "The approval or session is not in a state that allows this",
        413: "Body over 1 MiB",
        503: "The ledger is unavailable",
    }
    return {str(s): _json(_ref("Error"), text[s]) for s in statuses}


def _op(
    summary: str,
    roles: tuple[str, ...],
    responses: dict[str, Schema],
    *,
    body: Schema | None = None,
    parameters: list[Schema] | None = None,
    errors: tuple[int, ...] = (400, 401, 403),
) -> Schema:
    out: Schema = {"summary": summary, "responses": {**responses, **_errors(*errors)}}
    if roles:
        out["description"] = f"Roles: {', '.join(roles)}."
        out["security"] = [{"ApiKey": []}]
    else:
        out["security"] = []
    if body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if parameters:
        out["parameters"] = parameters
    return out


def _result_op(summary: str, path_id: Schema) -> Schema:
    return _op(
        summary,
        ("agent", "admin"),
        {
            "200": _json(
                _object(
                    ["envelope_id", "evidence_hash"],
                    {"envelope_id": {"type": "string"}, "evidence_hash": _HASH},
                ),
                "Recorded as a result entry",
            )
        },
        body=_ref("Result"),
        parameters=[path_id],
        errors=(400, 401, 403, 404, 413, 503),
    )


def _path_id(description: str, schema: Schema = _SESSION) -> Schema:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _session_header() -> Schema:
    return {
        "name": "X-AegisFlow-Session",
        "in": "header",
        "required": False,
        "description": "Session of the call (else actor.session, else <principal>-default)",
        "schema": _SESSION,
    }


def _bundle(description: str) -> Schema:
    return {
        "description": description,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }


def _schemas() -> dict[str, Schema]:
    text = {"type": "string", "maxLength": MAX_TEXT}
    envelope_id = {"type": "string", "pattern": UUID}
    result = {
        "summary": {"type": "string", "minLength": 1, "maxLength": 200},
        "result_sha256": _HASH,
        "size": {"type": "integer", "minimum": 0, "maximum": SAFE_INT},
        "is_error": {"type": "boolean"},
    }
    actor = _object(
        ["agent", "session", "principal"],
        {
            "agent": {"type": "string"},
            "session": _SESSION,
            "principal": {"type": "string"},
        },
    )
    return {
        "Value": {
            "description": "I-JSON without floats: what the ledger can sign canonically",
            "anyOf": [
                {"type": "string"},
                {"type": "integer", "minimum": -SAFE_INT, "maximum": SAFE_INT},
                {"type": "boolean"},
                {"type": "null"},
                _array(_ref("Value")),
                {"type": "object", "additionalProperties": _ref("Value")},
            ],
        },
        "Problem": _object(
            ["code", "message"],
            {
                "code": {"type": "string", "description": "A stable error reference"},
                "message": {"type": "string"},
                "hint": {"type": "string"},
            },
        ),
        "Error": _object(["error"], {"error": _ref("Problem")}),
        "Action": _object(
            ["protocol", "tool", "capability"],
            {
                "protocol": {"enum": list(PROTOCOLS)},
                "tool": {"type": "string", "pattern": TOOL, "maxLength": MAX_TOOL},
                "target": {"type": "string", "maxLength": MAX_TARGET},
                "capability": {"enum": list(CAPABILITIES)},
                "parameters": {
                    "type": "object",
                    "additionalProperties": _ref("Value"),
                    "description": "Tool arguments; shell actions take command or argv",
                },
                "justification": text,
                "task": text,
                "approval_ref": {
                    **envelope_id,
                    "description": "Retry of a reviewed action: the approved envelope id",
                },
                "mode": {
                    "enum": ["execute", "evaluate"],
                    "description": "evaluate: decide and record only; the caller runs the tool",
                },
                "call_id": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 256,
                    "description": "The caller's id for the call (an agent's tool-use id)",
                },
                "actor": _object(
                    [],
                    {
                        "agent": {"type": "string", "pattern": NAME, "maxLength": 128},
                        "session": _SESSION,
                    },
                ),
            },
        ),
        "ActionResult": _object(
            ["envelope_id", "decision", "matched_rule", "policy", "evidence_hash"],
            {
                "envelope_id": envelope_id,
                "decision": {"enum": ["allow", "review", "block"]},
                "matched_rule": {"type": "string"},
                "policy": {"type": "string"},
                "evidence_hash": _HASH,
                "error": _object(
                    ["code", "message", "data"],
                    {
                        "code": {
                            "enum": [-32001, -32002],
                            "description": "-32001 blocked, -32002 approval required",
                        },
                        "message": {"type": "string"},
                        "data": {
                            "type": "object",
                            "properties": {
                                "reason": {"type": "string"},
                                "suggested_alternative": {"type": "string"},
                                "approval_url": {"type": "string"},
                                "queued_at": {"type": ["string", "null"]},
                                "approval_ids": {
                                    **_array(envelope_id),
                                    "description": "Every part of the call queued for review",
                                },
                            },
                        },
                    },
                ),
                "credential": _object(
                    ["type", "scope", "expires_in"],
                    {
                        "type": {"type": "string"},
                        "scope": {"type": "string"},
                        "expires_in": {"type": "integer"},
                    },
                ),
                "result": {"type": "object", "description": "The executor's result"},
            },
        ),
        "Approval": _object(
            ["envelope_id", "actor", "tool", "target", "parameters", "queued_at"],
            {
                "envelope_id": envelope_id,
                "actor": actor,
                "tool": {"type": "string"},
                "target": {"type": "string"},
                "parameters": {"type": "object"},
                "queued_at": {"type": "string"},
                "expires_at": {"type": "string"},
                "status": {"enum": ["pending", "approved", "denied", "consumed"]},
                "justification": {"type": "string"},
                "reviewer": {"type": "string"},
                "comment": {"type": "string"},
                "decided_at": {"type": "string"},
            },
        ),
        "Result": _object(["summary", "result_sha256"], result),
        "ResultReport": _object(
            ["envelope_id", "summary", "result_sha256"], {"envelope_id": envelope_id, **result}
        ),
        "Decide": _object(
            [],
            {
                "comment": {"type": "string", "maxLength": 2000},
                "reason": {"type": "string", "maxLength": 2000, "description": "Alias of comment"},
                "reviewer": {
                    "type": "string",
                    "description": "Must name the key's principal when given",
                },
            },
        ),
        "Decided": _object(
            ["envelope_id", "status", "reviewer", "evidence_hash"],
            {
                "envelope_id": envelope_id,
                "status": {"enum": ["approved", "denied"]},
                "reviewer": {"type": "string"},
                "approved_at": {"type": "string"},
                "denied_at": {"type": "string"},
                "comment": {"type": "string"},
                "evidence_hash": _HASH,
            },
        ),
        "Sessions": _object(
            ["sessions"],
            {
                "sessions": {
                    "type": "array",
                    "items": _object(
                        ["session", "entries", "last_type", "last_time", "closed"],
                        {
                            "session": {"type": "string"},
                            "entries": {"type": "integer"},
                            "last_type": {"type": "string"},
                            "last_time": {"type": "string"},
                            "closed": {"type": "boolean"},
                        },
                    ),
                }
            },
        ),
        "Session": _object(
            ["session", "entries"],
            {
                "session": {"type": "string"},
                "entries": {
                    "type": "array",
                    "items": _object(
                        ["index", "seq", "type", "time", "entry_hash", "body"],
                        {
                            "index": {"type": "integer"},
                            "seq": {"type": "integer"},
                            "type": {"type": "string"},
                            "time": {"type": "string"},
                            "entry_hash": {"type": "string"},
                            "body": {"type": "object"},
                        },
                    ),
                },
            },
        ),
        "Closed": _object(
            ["session", "closed", "manifest_entry_hash"],
            {
                "session": {"type": "string"},
                "closed": {"const": True},
                "manifest_entry_hash": {"type": "string"},
            },
        ),
        "Report": _object(
            ["valid", "total_entries", "findings", "sessions"],
            {
                "valid": {"type": "boolean"},
                "mode": {"type": "string"},
                "origin": {"type": ["string", "null"]},
                "total_entries": {"type": "integer"},
                "checkpoints": {"type": "integer"},
                "latest_checkpoint": {"type": ["object", "null"]},
                "sessions": {"type": "object"},
                "findings": {"type": "array", "items": {"type": "object"}},
                "lines": {"type": "array", "items": {"type": "string"}},
            },
        ),
        "Health": _object(
            ["status", "policy", "policy_hash", "ledger_entries", "pending_approvals"],
            {
                "status": {"const": "ok"},
                "policy": {"type": "string"},
                "policy_hash": {"type": "string"},
                "ledger_entries": {"type": "integer"},
                "pending_approvals": {"type": "integer"},
            },
        ),
    }


def document() -> dict[str, Any]:
    """The OpenAPI document of every route :func:`~aegisflow.gateway.app.create_app` serves."""
    act = _op(
        "Evaluate and record an action (execute it when allowed and an executor can)",
        ("agent", "admin"),
        {"200": _json(_ref("ActionResult"), "The decision, recorded in the ledger")},
        body=_ref("Action"),
        parameters=[_session_header()],
        errors=(400, 401, 403, 409, 413, 503),
    )
    approval = _path_id(
        "The envelope id of the reviewed action", {"type": "string", "pattern": UUID}
    )
    decide = {
        "body": _ref("Decide"),
        "parameters": [approval],
        "errors": (400, 401, 403, 404, 409, 413),
    }
    session = _path_id("Session id")
    paths: dict[str, Any] = {
        "/health": {
            "get": _op(
                "Liveness, policy and ledger size",
                (),
                {"200": _json(_ref("Health"), "Serving")},
                errors=(),
            )
        },
        "/openapi.json": {
            "get": _op(
                "This document",
                (),
                {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                errors=(),
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics",
                ("admin", "auditor"),
                {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                errors=(401, 403),
            )
        },
        "/admin/v1/test-action": {"post": act},
        "/v1/actions": {"post": act},
        "/v1/actions/{id}/result": {
            "post": _result_op(
                "Report the result of an allowed call the caller ran itself (the MCP bridge)",
                _path_id("The envelope id of the allowed call", _UUID),
            )
        },
        "/v1/results": {
            "post": _op(
                "Report the results of several allowed calls at once (the MCP bridge's batch)",
                ("agent", "admin"),
                {
                    "200": _json(
                        _object(
                            ["results"],
                            {
                                "results": _array(
                                    _object(
                                        ["envelope_id"],
                                        {
                                            "envelope_id": {"type": ["string", "null"]},
                                            "evidence_hash": _HASH,
                                            "error": _ref("Problem"),
                                        },
                                    )
                                )
                            },
                        ),
                        "One answer per report, in order: its evidence hash, or why it was "
                        "not recorded (the others are recorded regardless)",
                    )
                },
                body=_object(
                    ["results"],
                    {
                        "results": {
                            **_array(_ref("ResultReport")),
                            "minItems": 1,
                            "maxItems": MAX_RESULT_BATCH,
                        }
                    },
                ),
                errors=(400, 401, 403, 413, 503),
            )
        },
        "/v1/calls/{id}/result": {
            "post": _result_op(
                "Report the result of the call named by call_id in this session (agent hooks)",
                _path_id("The call_id the action named", {"type": "string", "maxLength": 256}),
            )
        },
        "/admin/graphql": {
            "post": _op(
                "The GraphQL admin API: approvals, sessions, verification; approve and deny",
                ("agent", "reviewer", "admin", "auditor"),
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "data": {"type": ["object", "null"]},
                                "errors": _array({"type": "object"}),
                            },
                        },
                        "The result; field errors (a role refused) come in errors",
                    ),
                    "400": _json(
                        {
                            "anyOf": [
                                _ref("Error"),
                                _object(["errors"], {"errors": _array({"type": "object"})}),
                            ]
                        },
                        "A query that does not parse, validate or fit the limits",
                    ),
                },
                body=_object(
                    ["query"],
                    {
                        "query": {"type": "string", "maxLength": 8192},
                        "variables": {"type": ["object", "null"]},
                        "operationName": {"type": ["string", "null"]},
                    },
                ),
                errors=(401, 403, 413),
            )
        },
        "/v1/tools/hidden": {
            "post": _op(
                "Which tools the policy blocks in every case (the MCP bridge hides them)",
                ("agent", "admin"),
                {
                    "200": _json(
                        _object(["hidden"], {"hidden": _array({"type": "string"})}),
                        "The tools to hide, in the order given",
                    )
                },
                body=_object(
                    ["tools"],
                    {
                        "protocol": {"enum": list(PROTOCOLS)},
                        "tools": {
                            **_array({"type": "string", "pattern": TOOL, "maxLength": MAX_TOOL}),
                            "maxItems": 10_000,
                        },
                    },
                ),
                errors=(400, 401, 403, 413),
            )
        },
        "/admin/v1/approvals": {
            "get": _op(
                "Pending approvals, oldest first",
                ("agent", "reviewer", "admin", "auditor"),
                {
                    "200": _json(
                        _object(["pending"], {"pending": _array(_ref("Approval"))}),
                        "Approvals waiting for a human",
                    )
                },
                errors=(401, 403),
            )
        },
        "/admin/v1/approvals/{id}": {
            "get": _op(
                "One approval with its status",
                ("agent", "reviewer", "admin", "auditor"),
                {"200": _json(_ref("Approval"), "The approval")},
                parameters=[approval],
                errors=(401, 403, 404),
            )
        },
        "/admin/v1/approvals/{id}/approve": {
            "post": _op(
                "Approve a pending action",
                ("reviewer", "admin"),
                {"200": _json(_ref("Decided"), "Recorded in the ledger")},
                **decide,  # type: ignore[arg-type]
            )
        },
        "/admin/v1/approvals/{id}/deny": {
            "post": _op(
                "Deny a pending action",
                ("reviewer", "admin"),
                {"200": _json(_ref("Decided"), "Recorded in the ledger")},
                **decide,  # type: ignore[arg-type]
            )
        },
        "/admin/v1/sessions": {
            "get": _op(
                "Sessions with their entry counts",
                ("admin", "auditor"),
                {"200": _json(_ref("Sessions"), "Every session in the ledger")},
                errors=(401, 403, 503),
            )
        },
        "/admin/v1/sessions/{id}": {
            "get": _op(
                "Every entry of one session, oldest first",
                ("admin", "auditor"),
                {"200": _json(_ref("Session"), "The session")},
                parameters=[session],
                errors=(400, 401, 403, 404, 503),
            )
        },
        "/admin/v1/sessions/{id}/export": {
            "get": _op(
                "The session as a git bundle, under a fresh signed checkpoint",
                ("admin", "auditor"),
                {"200": _bundle("A git bundle for aegisctl evidence verify --bundle")},
                parameters=[session],
                errors=(400, 401, 403, 404, 503),
            )
        },
        "/admin/v1/sessions/{id}/close": {
            "post": _op(
                "Write the session's signed manifest; later actions in it are refused",
                ("agent (its own sessions)", "admin"),
                {"200": _json(_ref("Closed"), "The manifest entry")},
                parameters=[session],
                errors=(400, 401, 403, 409, 503),
            )
        },
        "/admin/v1/evidence/export": {
            "get": _op(
                "The whole ledger as a git bundle, under a fresh signed checkpoint",
                ("admin", "auditor"),
                {"200": _bundle("A git bundle for aegisctl evidence verify --bundle")},
                errors=(401, 403, 503),
            )
        },
        "/admin/v1/evidence/verify": {
            "get": _op(
                "Replay the ledger against the service's key",
                ("admin", "auditor"),
                {"200": _json(_ref("Report"), "The verification report")},
                parameters=[
                    {
                        "name": "session",
                        "in": "query",
                        "required": False,
                        "description": "Also return this session's verify lines",
                        "schema": _SESSION,
                    }
                ],
                errors=(400, 401, 403, 404, 503),
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AegisFlow governance service",
            "version": __version__,
            "description": (
                "Decisions (allow, review, block) are answered with 200; block and review "
                "carry the JSON-RPC style error the agent bridge relays. HTTP errors are "
                "for requests that could not be decided. See docs/service.md."
            ),
        },
        "servers": [{"url": "http://127.0.0.1:8081"}],
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": _schemas(),
        },
        "paths": paths,
    }


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
