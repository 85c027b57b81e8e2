"""Executors: carry out an allowed action with a credential minted for it alone.

An adapter (HTTP). The GitHub executor runs the ``github.*`` tools pr-writer gives a
credential to against the GitHub REST API at a configurable base URL, with the
installation token the broker narrowed to the matched rule's permissions and the target
repository. The token is used here and nowhere else: the agent and the ledger see only
its grant.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from aegisflow.credentials import Credential
from aegisflow.envelope import Envelope
from aegisflow.errors import AegisError, InputError, OperationalError


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
    """Runs the ``github.*`` tools that write (and ``get_file_contents``) over REST."""

    TOOLS = frozenset(
        {
            "github.get_file_contents",
            "github.create_pull_request",
            "github.create_or_update_file",
            "github.push_files",
        }
    )

    def __init__(self, api_url: str, session: aiohttp.ClientSession) -> None:
        self.api_url = api_url.rstrip("/")
        self.session = session

    def can_run(self, envelope: Envelope) -> bool:
        return envelope.tool in self.TOOLS

    async def run(self, envelope: Envelope, credential: Credential) -> tuple[dict[str, Any], str]:
        """Run ``envelope`` with ``credential``; returns the result and its summary.

        Raises:
            ExecutionError: If GitHub fails the call.
            InputError: If the action lacks what the tool needs.
        """
        owner, _, repo = envelope.target.partition("/")
        if not owner or not repo or "/" in repo:
            raise InputError(f"target {envelope.target!r} is not owner/repo")
        base = f"{self.api_url}/repos/{owner}/{repo}"
        if envelope.tool == "github.create_pull_request":
            result = await self._create_pull(base, envelope, credential)
            return result, f"pr/{result['pr_number']}"
        if envelope.tool == "github.create_or_update_file":
            result = await self._put_file(base, envelope, credential)
            return result, f"commit/{result['commit_sha'][:12]}"
        if envelope.tool == "github.push_files":
            result = await self._push_files(base, envelope, credential)
            return result, f"commit/{result['commit_sha'][:12]}"
        result = await self._file(base, envelope, credential)
        return result, f"file/{result['size']}B"

    async def _create_pull(
        self, base: str, envelope: Envelope, credential: Credential
    ) -> dict[str, Any]:
        params = envelope.parameters
        body = {key: params.get(key) for key in ("title", "head", "base", "body") if key in params}
        data = await self._call("POST", f"{base}/pulls", credential, body, expect=201)
        return {"pr_url": data["html_url"], "pr_number": data["number"]}

    async def _file(self, base: str, envelope: Envelope, credential: Credential) -> dict[str, Any]:
        path = _repo_path(envelope.parameters.get("path"), "parameters.path")
        data = await self._call("GET", f"{base}/contents/{path}", credential, None, expect=200)
        content = base64.b64decode(data.get("content", ""))
        return {
            "path": envelope.parameters["path"],
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "content": content.decode("utf-8", errors="replace"),
        }

    async def _put_file(
        self, base: str, envelope: Envelope, credential: Credential
    ) -> dict[str, Any]:
        params = envelope.parameters
        path = _repo_path(params.get("path"), "parameters.path")
        content = _text(params, "content", empty=True)
        body: dict[str, Any] = {
            "message": _text(params, "message"),
            "content": base64.b64encode(content.encode()).decode(),
            "branch": _text(params, "branch"),
        }
        if isinstance(params.get("sha"), str):
            body["sha"] = params["sha"]
        data = await self._call("PUT", f"{base}/contents/{path}", credential, body, expect=None)
        commit = data.get("commit")
        if not isinstance(commit, dict) or not isinstance(commit.get("sha"), str):
            raise ExecutionError("GitHub's answer has no commit")
        return {"path": params["path"], "branch": body["branch"], "commit_sha": commit["sha"]}

    async def _push_files(
        self, base: str, envelope: Envelope, credential: Credential
    ) -> dict[str, Any]:
        """One commit of several files, with the git data API: ref, tree, commit, ref."""
        params = envelope.parameters
        branch = _repo_path(params.get("branch"), "parameters.branch")
        message = _text(params, "message")
        files = params.get("files")
        if not isinstance(files, list) or not files:
            raise InputError("github.push_files needs parameters.files: [{path, content}]")
        tree = []
        for item in files:
            if not isinstance(item, Mapping):
                raise InputError("each of parameters.files is {path, content}")
            mode = {"mode": "100644", "type": "blob"}
            _repo_path(item.get("path"), "a file path")
            tree.append(
                {"path": item["path"], **mode, "content": _text(item, "content", empty=True)}
            )
        ref = await self._call(
            "GET", f"{base}/git/ref/heads/{branch}", credential, None, expect=200
        )
        parent = _sha(ref.get("object"), "the branch")
        made = await self._call(
            "POST", f"{base}/git/trees", credential, {"base_tree": parent, "tree": tree}, expect=201
        )
        commit = await self._call(
            "POST",
            f"{base}/git/commits",
            credential,
            {"message": message, "tree": _sha(made, "the tree"), "parents": [parent]},
            expect=201,
        )
        sha = _sha(commit, "the commit")
        await self._call(
            "PATCH", f"{base}/git/refs/heads/{branch}", credential, {"sha": sha}, expect=200
        )
        return {"branch": params["branch"], "files": len(tree), "commit_sha": sha}

    async def _call(
        self,
        method: str,
        url: str,
        credential: Credential,
        body: Mapping[str, Any] | None,
        *,
        expect: int | None,
    ) -> dict[str, Any]:
        """One REST call; ``expect`` None accepts 200 and 201."""
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
        accepted = (200, 201) if expect is None else (expect,)
        if status not in accepted or not isinstance(data, dict):
            message = data.get("message") if isinstance(data, dict) else None
            raise ExecutionError(f"GitHub answered {status}: {message}")
        return data


def _repo_path(value: object, what: str) -> str:
    """A file path or branch name that stays one URL path segment chain, quoted."""
    if (
        not isinstance(value, str)
        or not value
        or value.startswith("/")
        or any(part in ("", ".", "..") for part in value.split("/"))
        or any(c in value for c in "?#\\%")
        or not value.isprintable()
    ):
        raise InputError(f"{what} {str(value)[:80]!r} is not a plain repository path")
    return urllib.parse.quote(value, safe="/")


def _text(params: Mapping[str, Any], key: str, *, empty: bool = False) -> str:
    value = params.get(key)
    if not isinstance(value, str) or (not value and not empty):
        raise InputError(f"parameters.{key} must be a{'' if empty else ' non-empty'} string")
    return value


def _sha(data: object, what: str) -> str:
    sha = data.get("sha") if isinstance(data, Mapping) else None
    if not isinstance(sha, str):
        raise ExecutionError(f"GitHub's answer has no sha for {what}")
    return sha


def failure(error: AegisError, grant: Mapping[str, Any] | None = None) -> Execution:
    """The execution record of an action that was allowed but could not be carried out."""
    return Execution(grant, {"error": {"code": error.reference, "message": error.message}}, "error")
