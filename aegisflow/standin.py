"""A local stand-in for the GitHub API, for tests and the demo (never for production).

It checks what GitHub would: the app JWT's RS256 signature against the app's public key,
its issuer and time window; that an installation token asks only for permissions and
repositories the installation has; and, on every REST call, that the token exists, is
unexpired, covers the repository and carries the permission the call needs.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from aiohttp import web

LEVELS = {"read": 1, "write": 2, "admin": 3}
TOKEN_LIFETIME = timedelta(hours=1)
MAX_JWT_LIFETIME = 600 + 60  # ten minutes, plus the usual backdating


@dataclass(slots=True)
class Installation:
    installation_id: int
    owner: str
    repositories: frozenset[str]
    permissions: Mapping[str, str]


@dataclass(slots=True)
class _Token:
    installation: Installation
    repositories: frozenset[str]
    permissions: Mapping[str, str]
    expires_at: datetime


@dataclass(slots=True)
class StandIn:
    """The stand-in's state: one app, its installations, the tokens and PRs it made."""

    app_id: str
    public_key_pem: bytes
    installations: dict[int, Installation]
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    """(``owner/repo``, path) -> contents."""
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    tokens: dict[str, _Token] = field(default_factory=dict)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    next_pull: int = 1247
    branches: dict[tuple[str, str], str] = field(default_factory=dict)
    """(``owner/repo``, branch) -> commit sha."""
    trees: dict[str, dict[str, bytes]] = field(default_factory=dict)
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    """Every REST call that passed authorization: (method, path)."""


STANDIN = web.AppKey("standin", StandIn)
_Handler = Callable[[web.Request, "StandIn"], Awaitable[web.Response]]


def create_standin_app(state: StandIn) -> web.Application:
    app = web.Application()
    app[STANDIN] = state
    app.router.add_post("/app/installations/{id}/access_tokens", _access_token)
    app.router.add_get("/repos/{owner}/{repo}/contents/{path:.+}", _contents)
    app.router.add_post("/repos/{owner}/{repo}/pulls", _create_pull)
    app.router.add_put("/repos/{owner}/{repo}/contents/{path:.+}", _put_contents)
    app.router.add_get("/repos/{owner}/{repo}/git/ref/heads/{branch:.+}", _get_ref)
    app.router.add_post("/repos/{owner}/{repo}/git/trees", _create_tree)
    app.router.add_post("/repos/{owner}/{repo}/git/commits", _create_commit)
    app.router.add_patch("/repos/{owner}/{repo}/git/refs/heads/{branch:.+}", _update_ref)
    return app


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


async def _access_token(request: web.Request) -> web.Response:
    state = request.app[STANDIN]
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return _error(401, "A JSON web token could not be decoded")
    now = state.clock()
    try:
        claims = jwt.decode(
            auth[7:],
            state.public_key_pem,
            algorithms=["RS256"],
            options={"require": ["iat", "exp", "iss"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return _error(401, "A JSON web token could not be decoded")
    if str(claims["iss"]) != state.app_id:
        return _error(401, "'Issuer' claim ('iss') must be the app id")
    iat, exp, stamp = int(claims["iat"]), int(claims["exp"]), int(now.timestamp())
    if exp <= stamp or iat > stamp + 60 or exp - iat > MAX_JWT_LIFETIME:
        return _error(401, "'Expiration time' claim ('exp') is too far in the future or past")
    installation = state.installations.get(int(request.match_info["id"]))
    if installation is None:
        return _error(404, "Not Found")
    body = await request.json()
    wanted_repos = frozenset(body.get("repositories") or installation.repositories)
    if not wanted_repos <= installation.repositories:
        return _error(
            422, "There is at least one repository that does not exist or is not accessible"
        )
    wanted = dict(body.get("permissions") or installation.permissions)
    for name, level in wanted.items():
        granted = installation.permissions.get(name)
        if granted is None or LEVELS.get(level, 99) > LEVELS.get(granted, 0):
            return _error(
                422, f"The permissions requested are not granted to this installation: {name}"
            )
    token = "ghs_" + secrets.token_urlsafe(24)
    expires_at = now + TOKEN_LIFETIME
    state.tokens[token] = _Token(installation, wanted_repos, wanted, expires_at)
    return web.json_response(
        {
            "token": token,
            "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "permissions": wanted,
            "repositories": [{"name": r} for r in sorted(wanted_repos)],
        },
        status=201,
    )


def _authorize(request: web.Request, permission: str, level: str) -> _Token | web.Response:
    state = request.app[STANDIN]
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    token = state.tokens.get(value) if scheme.lower() in ("token", "bearer") else None
    if token is None or token.expires_at <= state.clock():
        return _error(401, "Bad credentials")
    owner, repo = request.match_info["owner"], request.match_info["repo"]
    if owner != token.installation.owner or repo not in token.repositories:
        return _error(404, "Not Found")
    if LEVELS.get(token.permissions.get(permission, ""), 0) < LEVELS[level]:
        return _error(403, "Resource not accessible by integration")
    state.calls.append((request.method, request.path))
    return token


def _requires(
    permission: str, level: str
) -> Callable[[_Handler], Callable[[web.Request], Awaitable[web.Response]]]:
    """A REST handler that runs only for a token with ``permission`` at ``level``."""

    def wrap(handler: _Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def checked(request: web.Request) -> web.Response:
            found = _authorize(request, permission, level)
            if isinstance(found, web.Response):
                return found
            return await handler(request, request.app[STANDIN])

        return checked

    return wrap


@_requires("contents", "read")
async def _contents(request: web.Request, state: StandIn) -> web.Response:
    repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
    path = request.match_info["path"]
    content = state.files.get((repo, path))
    if content is None:
        return _error(404, "Not Found")
    return web.json_response(
        {
            "type": "file",
            "path": path,
            "encoding": "base64",
            "content": base64.b64encode(content).decode(),
        }
    )


@_requires("pull_requests", "write")
async def _create_pull(request: web.Request, state: StandIn) -> web.Response:
    body = await request.json()
    for key in ("title", "head", "base"):
        if not isinstance(body.get(key), str):
            return _error(422, f"Invalid request: {key} is required")
    owner, repo = request.match_info["owner"], request.match_info["repo"]
    number = state.next_pull
    state.next_pull += 1
    pull = {
        "number": number,
        "html_url": f"https://github.com/{owner}/{repo}/pull/{number}",
        "title": body["title"],
        "head": {"ref": body["head"]},
        "base": {"ref": body["base"]},
    }
    state.pulls.append(pull)
    return web.json_response(pull, status=201)


def _repo(request: web.Request) -> str:
    return f"{request.match_info['owner']}/{request.match_info['repo']}"


def _sha(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()  # noqa: S324 - ids, not security


@_requires("contents", "write")
async def _put_contents(request: web.Request, state: StandIn) -> web.Response:
    body = await request.json()
    repo, path = _repo(request), request.match_info["path"]
    branch = body.get("branch", "main")
    if not isinstance(body.get("message"), str) or not isinstance(body.get("content"), str):
        return _error(422, "Invalid request: message and content are required")
    if (repo, branch) not in state.branches:
        return _error(404, f"Branch {branch} not found")
    exists = (repo, path) in state.files
    if exists and body.get("sha") is None:
        return _error(422, 'Invalid request: "sha" wasn\'t supplied.')
    content = base64.b64decode(body["content"])
    state.files[(repo, path)] = content
    commit = _sha(repo, branch, path, content, state.branches[(repo, branch)])
    state.branches[(repo, branch)] = commit
    return web.json_response(
        {"content": {"path": path, "sha": _sha(content)}, "commit": {"sha": commit}},
        status=200 if exists else 201,
    )


@_requires("contents", "read")
async def _get_ref(request: web.Request, state: StandIn) -> web.Response:
    branch = request.match_info["branch"]
    sha = state.branches.get((_repo(request), branch))
    if sha is None:
        return _error(404, "Not Found")
    return web.json_response({"ref": f"refs/heads/{branch}", "object": {"sha": sha}})


@_requires("contents", "write")
async def _create_tree(request: web.Request, state: StandIn) -> web.Response:
    body = await request.json()
    files = {}
    for item in body.get("tree", []):
        if not isinstance(item.get("path"), str) or not isinstance(item.get("content"), str):
            return _error(422, "Invalid tree entry")
        files[item["path"]] = item["content"].encode()
    sha = _sha(body.get("base_tree"), sorted(files.items()))
    state.trees[sha] = files
    return web.json_response({"sha": sha}, status=201)


@_requires("contents", "write")
async def _create_commit(request: web.Request, state: StandIn) -> web.Response:
    body = await request.json()
    if body.get("tree") not in state.trees or not isinstance(body.get("message"), str):
        return _error(422, "Invalid request: tree and message are required")
    sha = _sha(body["tree"], body.get("parents"), body["message"])
    state.commits[sha] = body
    return web.json_response({"sha": sha}, status=201)


@_requires("contents", "write")
async def _update_ref(request: web.Request, state: StandIn) -> web.Response:
    repo, branch = _repo(request), request.match_info["branch"]
    body = await request.json()
    commit = state.commits.get(body.get("sha"))
    if commit is None or (repo, branch) not in state.branches:
        return _error(422, "Reference update failed")
    if state.branches[(repo, branch)] not in commit.get("parents", []):
        return _error(422, "Update is not a fast forward")
    state.branches[(repo, branch)] = body["sha"]
    for path, content in state.trees[commit["tree"]].items():
        state.files[(repo, path)] = content
    return web.json_response({"ref": f"refs/heads/{branch}", "object": {"sha": body["sha"]}})
