"""The bridge's client of the governance service: decide an action, report its result.

Fails closed: an unreachable, slow or nonsensical service is an error the proxy turns
into a refusal; the call never reaches the upstream server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from aegisflow.errors import OperationalError

DEFAULT_TIMEOUT = 10.0


class ServiceUnavailable(OperationalError):
    reference = "service-unavailable"


class Service:
    """``POST /v1/actions`` and ``POST /v1/actions/{id}/result`` with an agent key."""

    def __init__(
        self, url: str, api_key: str, *, session: str, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.url = url.rstrip("/")
        self._headers = {"X-API-Key": api_key, "X-AegisFlow-Session": session}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Service:
        self._http = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()

    async def decide(self, action: Mapping[str, Any]) -> dict[str, Any]:
        """The service's answer to ``action``: a decision, or its refusal of the request.

        Raises:
            ServiceUnavailable: If the service cannot be reached in time or answers
                with something that is neither a decision nor a JSON error.
        """
        status, body = await self._post("/v1/actions", action)
        if status == 200 and isinstance(body.get("decision"), str):
            return body
        error = body.get("error")
        if 400 <= status < 500 and isinstance(error, Mapping) and "message" in error:
            return {"refused": True, "status": status, "error": dict(error)}
        raise ServiceUnavailable(f"the governance service answered {status} without a decision")

    async def record_results(self, reports: Sequence[Mapping[str, Any]]) -> list[str]:
        """Record what the upstream answered to allowed calls, in one request.

        Each report names its ``envelope_id``. Returns a line for each report the
        service did not record, saying why.

        Raises:
            ServiceUnavailable: If the service cannot record any of them.
        """
        status, body = await self._post("/v1/results", {"results": list(reports)})
        if status in (404, 405):  # a service from before the batch: one report at a time
            return [line for r in reports if (line := await self._record_one(r)) is not None]
        answers = body.get("results")
        if status != 200 or not isinstance(answers, list) or len(answers) != len(reports):
            raise ServiceUnavailable(f"the governance service refused the results ({status})")
        refused = []
        for report, answer in zip(reports, answers, strict=True):
            error = answer.get("error") if isinstance(answer, Mapping) else "no answer"
            if error is not None:
                message = error.get("message") if isinstance(error, Mapping) else error
                refused.append(f"{report['envelope_id']}: {message}")
        return refused

    async def _record_one(self, report: Mapping[str, Any]) -> str | None:
        envelope_id = report["envelope_id"]
        fields = {k: v for k, v in report.items() if k != "envelope_id"}
        status, body = await self._post(f"/v1/actions/{envelope_id}/result", fields)
        if status == 200:
            return None
        error = body.get("error")
        return f"{envelope_id}: {error.get('message') if isinstance(error, Mapping) else status}"

    async def hidden(self, tools: list[str]) -> set[str]:
        """Which of ``tools`` the policy blocks in every case.

        Raises:
            ServiceUnavailable: If the service cannot say.
        """
        status, body = await self._post("/v1/tools/hidden", {"protocol": "mcp", "tools": tools})
        hidden = body.get("hidden")
        if status != 200 or not isinstance(hidden, list):
            raise ServiceUnavailable(f"the governance service answered {status} about tools")
        return {t for t in hidden if isinstance(t, str)}

    async def _post(self, path: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        if self._http is None:
            raise ServiceUnavailable("the service client is not open")
        try:
            async with self._http.post(self.url + path, json=body) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise ServiceUnavailable(
                f"the governance service at {self.url} did not answer ({type(e).__name__})"
            ) from None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ServiceUnavailable(f"the governance service answered {status} without JSON")
        return status, data
