"""Executors: carry out an allowed action with a credential minted for it alone.

An adapter (HTTP). The GitHub executor runs the ``github.*`` tools the walkthrough uses
against the GitHub REST API at a configurable base URL, with an installation token the
broker narrows to the matched rule's permissions and the target repository. The token is
used here and nowhere else: the agent and the ledger see only its grant.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from aegisflow.credentials import Credential, GitHubApp
from aegisflow.envelope import Envelope
from aegisflow.errors import AegisError, InputError, OperationalError
from aegisflow.policy.model import CredentialSpec


class ExecutionError(OperationalError):
    reference = "execution"


@dataclass(frozen=True, slots=True)
class Execution:
    """What running an action produced: the grant, the result, and a one-word summary."""

    grant: Mapping[str, Any] | None
    result: Mapping[str, Any]
    summary: str

    @property
    def result_sha256(self) -> str:
        canonical = json.dumps(self.result, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(canonical).hexdigest()


class GitHubExecutor:
    """Runs ``github.get_file_contents`` and ``github.create_pull_request``."""

    TOOLS = frozenset({"github.get_file_contents", "github.create_pull_request"})

    def __init__(self, app: GitHubApp, session: aiohttp.ClientSession) -> None:
        self.app = app
        self.session = session

    def can_run(self, envelope: Envelope) -> bool:
        return envelope.tool in self.TOOLS

    async def run(
        self, envelope: Envelope, spec: CredentialSpec | None, now: datetime
    ) -> Execution:
        """Mint a credential for ``envelope`` (if the rule names one) and run it.

        Raises:
            CredentialRefused, CredentialError: If no credential could be minted.
            ExecutionError: If GitHub fails the call.
            InputError: If the action lacks what the tool needs.
        """
        owner, _, repo = envelope.target.partition("/")
        if not owner or not repo or "/" in repo:
            raise InputError(f"target {envelope.target!r} is not owner/repo")
        if spec is None:
            raise ExecutionError(f"the rule for {envelope.tool} names no credential to run it with")
        credential = await self.app.mint(spec, envelope.target, session=self.session, now=now)
        base = f"{self.app.api_url.rstrip('/')}/repos/{owner}/{repo}"
        if envelope.tool == "github.create_pull_request":
            result = await self._create_pull(base, envelope, credential)
            summary = f"pr/{result['pr_number']}"
        else:
            result = await self._file(base, envelope, credential)
            summary = f"file/{result['size']}B"
        return Execution(credential.grant(now), result, summary)

    async def _create_pull(
        self, base: str, envelope: Envelope, credential: Credential
    ) -> dict[str, Any]:
        params = envelope.parameters
        body = {key: params.get(key) for key in ("title", "head", "base", "body") if key in params}
        data = await self._call("POST", f"{base}/pulls", credential, body, expect=201)
        return {"pr_url": data["html_url"], "pr_number": data["number"]}

    async def _file(self, base: str, envelope: Envelope, credential: Credential) -> dict[str, Any]:
        path = envelope.parameters.get("path")
        if not isinstance(path, str) or not path:
            raise InputError("github.get_file_contents needs parameters.path")
        data = await self._call("GET", f"{base}/contents/{path}", credential, None, expect=200)
        content = base64.b64decode(data.get("content", ""))
        return {
            "path": path,
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "content": content.decode("utf-8", errors="replace"),
        }

    async def _call(
        self,
        method: str,
        url: str,
        credential: Credential,
        body: Mapping[str, Any] | None,
        *,
        expect: int,
    ) -> dict[str, Any]:
        headers = {
            "Authorization": f"token {credential.secret}",
            "Accept": "application/vnd.github+json",
        }
        try:
            async with self.session.request(method, url, json=body, headers=headers) as response:
                status = response.status
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise ExecutionError(f"cannot reach GitHub: {type(e).__name__}") from None
        if status != expect or not isinstance(data, dict):
            message = data.get("message") if isinstance(data, dict) else None
            raise ExecutionError(f"GitHub answered {status}: {message}")
        return data


def failure(error: AegisError) -> Execution:
    """The execution record of an action that was allowed but could not be carried out."""
    return Execution(None, {"error": {"code": error.reference, "message": error.message}}, "error")
