"""``aegisflow serve``: the governance service on loopback, on the embedded defaults."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import aiohttp
import typer
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from aegisflow.auth import ApiKeys
from aegisflow.channels import slack
from aegisflow.cli.app import HomeOption, stderr
from aegisflow.cli.policy import read_policy
from aegisflow.config import Paths
from aegisflow.credentials import Broker, GitHubApp, GitHubProvider, StaticProvider
from aegisflow.errors import InputError, OperationalError
from aegisflow.eventloop import new_event_loop
from aegisflow.executor import GitHubExecutor
from aegisflow.gateway.app import create_app
from aegisflow.keys import load_signer
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.policy.loader import parse_duration
from aegisflow.service import Governance


def serve(
    home: HomeOption = None,
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless you mean it)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8081,
    policy: Annotated[
        Path | None, typer.Option(help="Policy file (default: policies/pr-writer.yaml)")
    ] = None,
    public_url: Annotated[
        str | None, typer.Option(help="Base URL in approval links (default http://localhost:PORT)")
    ] = None,
    github_app_id: Annotated[
        str | None, typer.Option(help="GitHub App id: enables the GitHub executor")
    ] = None,
    github_installation: Annotated[
        int | None, typer.Option(help="The App's installation id")
    ] = None,
    github_key: Annotated[
        Path | None, typer.Option(help="The App's private key (PEM, mode 0600)")
    ] = None,
    github_api: Annotated[
        str, typer.Option(help="GitHub REST API base URL")
    ] = "https://api.github.com",
    access_log: Annotated[
        bool,
        typer.Option(help="Also log every HTTP request (each action already has its JSON line)"),
    ] = False,
    static_credential: Annotated[
        list[str] | None,
        typer.Option(
            help="A secret for rules with credential type static: NAME=ENV_VAR (repeatable)"
        ),
    ] = None,
    session_idle: Annotated[
        str,
        typer.Option(help="Close sessions idle this long (e.g. 30m, 1h, 2d; 0 never)"),
    ] = "1h",
    slack_webhook_url: Annotated[
        str | None,
        typer.Option(help="Post each review to this Slack incoming webhook, with buttons"),
    ] = None,
    slack_signing_secret_env: Annotated[
        str,
        typer.Option(help="Environment variable holding the Slack app's signing secret"),
    ] = "SLACK_SIGNING_SECRET",  # noqa: S107 - the name of a variable, not a secret
    slack_user: Annotated[
        list[str] | None,
        typer.Option(help="SLACK_USER_ID=PRINCIPAL: who may click Approve (repeatable)"),
    ] = None,
    slack_response_prefix: Annotated[
        list[str] | None,
        typer.Option(hidden=True, help="Also accept these response URLs (a stand-in Slack)"),
    ] = None,
) -> None:
    """Evaluate, record and queue actions over HTTP (the single ledger writer)."""
    idle_seconds = parse_duration(session_idle)
    if idle_seconds is None:
        raise InputError(f"--session-idle must be a duration like 30m or 1h, not {session_idle!r}")
    paths = Paths.from_env(home)
    compiled = read_policy(policy or paths.default_policy)
    if not paths.api_keys.exists():
        raise OperationalError(
            f"no API keys at {paths.api_keys}",
            hint="create one: aegisctl keys api-key --principal NAME --role agent",
        )
    keys = ApiKeys.load(paths.api_keys)
    signer = load_signer(paths.ledger_key)
    ledger = Ledger.open(GitStorage(paths.ledger, writable=True), signer)
    broker = Broker()
    if static_credential:
        broker.providers["static"] = StaticProvider(_static_credentials(static_credential))
    governance = Governance(policy=compiled, ledger=ledger, broker=broker)
    restored = governance.restore()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("aiohttp.server").addFilter(_one_line_for_bad_requests)
    stderr.print(
        f"aegisflow: policy {compiled.name} ({compiled.content_hash[:19]}...), "
        f"{restored} ledger entries, {len(governance.queue.pending(governance.clock()))} "
        f"pending approvals; listening on http://{host}:{port}",
        markup=False,
    )
    app = create_app(
        governance,
        keys,
        base_url=public_url or f"http://localhost:{port}",
        idle_timeout=timedelta(seconds=idle_seconds) if idle_seconds else None,
    )
    github = _github_app(github_app_id, github_installation, github_key, github_api)
    if github is not None:
        attach_github(app, governance, github)
    if slack_webhook_url:
        config = slack.load_config(
            slack_webhook_url,
            os.environ.get(slack_signing_secret_env, ""),
            slack_user or [],
            base_url=public_url or f"http://localhost:{port}",
            response_prefixes=("https://hooks.slack.com/", *(slack_response_prefix or [])),
        )
        slack.attach(app, slack.SlackChannel(config, governance, keys))
    try:
        _settle()
        web.run_app(
            app,
            loop=new_event_loop(),
            host=host,
            port=port,
            print=None,
            handle_signals=True,
            access_log=logging.getLogger("aiohttp.access") if access_log else None,
        )
    finally:
        ledger.close()


def _settle() -> None:
    """Move everything built at start-up (policy, parser tables) out of the collector's
    way: a full collection over it paused every request for ~50 ms a few times a second."""
    gc.collect()
    gc.freeze()


def _one_line_for_bad_requests(record: logging.LogRecord) -> bool:
    """A malformed HTTP message is the client's fault: one line, not a traceback."""
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, HttpProcessingError):
        record.msg = "refused a malformed HTTP request: %s"
        record.args = (" ".join(str(error.message).split())[:200],)
        record.exc_info = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


def _github_app(
    app_id: str | None, installation: int | None, key: Path | None, api: str
) -> GitHubApp | None:
    given = [app_id is not None, installation is not None, key is not None]
    if not any(given):
        return None
    if not all(given) or app_id is None or installation is None or key is None:
        raise InputError("--github-app-id, --github-installation and --github-key go together")
    if key.stat().st_mode & 0o077:
        raise OperationalError(f"{key} is readable by others", hint=f"chmod 600 {key}")
    return GitHubApp(
        app_id=app_id, installation_id=installation, private_key_pem=key.read_bytes(), api_url=api
    )


def attach_github(app: web.Application, governance: Governance, github: GitHubApp) -> None:
    """Mint GitHub App tokens and run GitHub tools, over one client session per app run."""

    async def session_context(_: web.Application) -> AsyncIterator[None]:
        broker = governance.broker = governance.broker or Broker()
        async with aiohttp.ClientSession() as session:
            broker.providers["github_app_jwt"] = GitHubProvider(github, session)
            governance.executor = GitHubExecutor(github.api_url, session)
            yield
            governance.executor = None
            del broker.providers["github_app_jwt"]

    app.cleanup_ctx.append(session_context)


def _static_credentials(specs: list[str]) -> dict[str, str]:
    """``NAME=ENV_VAR`` pairs: each secret is read from the environment, never the command line."""
    secrets: dict[str, str] = {}
    for spec in specs:
        name, _, variable = spec.partition("=")
        if not name or not variable:
            raise InputError(f"--static-credential takes NAME=ENV_VAR, not {spec!r}")
        value = os.environ.get(variable)
        if not value:
            raise InputError(f"--static-credential {name}: ${variable} is not set")
        secrets[name] = value
    return secrets
