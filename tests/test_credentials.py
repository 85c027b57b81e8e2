"""The GitHub App credential broker against the stand-in GitHub, which checks what GitHub would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aegisflow.credentials import CredentialRefused, GitHubApp
from aegisflow.policy.model import CredentialSpec
from aegisflow.standin import Installation, StandIn, create_standin_app

NOW = datetime(2026, 4, 6, 14, 25, 42, tzinfo=UTC)
SPEC = CredentialSpec(
    type="github_app_jwt", permissions=(("pull_requests", "write"), ("contents", "read")), ttl=600
)


def rsa_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


PRIVATE, PUBLIC = rsa_pair()
OTHER_PRIVATE, _ = rsa_pair()


def standin() -> StandIn:
    """A stand-in GitHub with app 12345 installed (as 7) on aegisflow/aegisflow."""
    return StandIn(
        app_id="12345",
        public_key_pem=PUBLIC,
        installations={
            7: Installation(
                installation_id=7,
                owner="aegisflow",
                repositories=frozenset({"aegisflow"}),
                permissions={"pull_requests": "write", "contents": "write", "metadata": "read"},
            )
        },
        files={("aegisflow/aegisflow", "README.md"): b"# AegisFlow\n"},
        clock=lambda: NOW,
    )


@pytest.fixture
async def github(aiohttp_server: Any) -> tuple[StandIn, str]:
    state = standin()
    server = await aiohttp_server(create_standin_app(state))
    return state, str(server.make_url("")).rstrip("/")


def app(url: str, key: bytes = PRIVATE) -> GitHubApp:
    return GitHubApp(app_id="12345", installation_id=7, private_key_pem=key, api_url=url)


async def test_mints_a_narrow_token_and_uses_it(github: tuple[StandIn, str]) -> None:
    state, url = github
    async with aiohttp.ClientSession() as session:
        credential = await app(url).mint(SPEC, "aegisflow/aegisflow", session=session, now=NOW)
        assert credential.grant(NOW) == {
            "type": "github_app_jwt",
            "scope": "pull_requests:write,contents:read",
            "expires_in": 600,
            "fingerprint": credential.fingerprint,
        }
        assert credential.secret not in repr(credential)
        (token,) = state.tokens.values()
        assert dict(token.permissions) == {"pull_requests": "write", "contents": "read"}
        headers = {"Authorization": f"token {credential.secret}"}
        async with session.post(
            f"{url}/repos/aegisflow/aegisflow/pulls",
            json={"title": "fix", "head": "claude/x", "base": "main"},
            headers=headers,
        ) as response:
            assert response.status == 201
            assert (await response.json())["number"] == 1247
        async with session.get(
            f"{url}/repos/aegisflow/other/contents/README.md", headers=headers
        ) as response:
            assert response.status == 404  # the token covers one repository


@pytest.mark.parametrize(
    ("make", "spec", "repository", "message"),
    [
        (lambda url: app(url, OTHER_PRIVATE), SPEC, "aegisflow/aegisflow", "(401)"),
        (
            app,
            CredentialSpec(
                type="github_app_jwt", permissions=(("administration", "write"),), ttl=600
            ),
            "aegisflow/aegisflow",
            "(422)",
        ),
        (
            app,
            CredentialSpec(type="github_app_jwt", permissions=(("contents", "admin"),), ttl=600),
            "aegisflow/aegisflow",
            "(422)",
        ),
        (app, SPEC, "aegisflow/secret-repo", "(422)"),
    ],
    ids=["wrong-key", "permission-not-granted", "level-too-high", "repository-not-installed"],
)
async def test_refusals(
    github: tuple[StandIn, str], make: Any, spec: CredentialSpec, repository: str, message: str
) -> None:
    _, url = github
    async with aiohttp.ClientSession() as session:
        with pytest.raises(
            CredentialRefused, match=message.replace("(", r"\(").replace(")", r"\)")
        ):
            await make(url).mint(spec, repository, session=session, now=NOW)


async def test_expired_jwt_is_refused(github: tuple[StandIn, str]) -> None:
    _, url = github
    async with aiohttp.ClientSession() as session:
        with pytest.raises(CredentialRefused, match="401"):
            await app(url).mint(
                SPEC, "aegisflow/aegisflow", session=session, now=NOW - timedelta(hours=1)
            )


async def test_pull_needs_the_permission(github: tuple[StandIn, str]) -> None:
    _, url = github
    read_only = CredentialSpec(type="github_app_jwt", permissions=(("contents", "read"),), ttl=600)
    async with aiohttp.ClientSession() as session:
        credential = await app(url).mint(read_only, "aegisflow/aegisflow", session=session, now=NOW)
        async with session.post(
            f"{url}/repos/aegisflow/aegisflow/pulls",
            json={"title": "x", "head": "h", "base": "main"},
            headers={"Authorization": f"token {credential.secret}"},
        ) as response:
            assert response.status == 403
