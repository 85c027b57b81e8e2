"""The MCP bridge's configuration file: upstream servers, target mapping, the service.

```yaml
service: http://127.0.0.1:8081
api_key_file: ~/.config/aegisflow/agent.key    # mode 0600; else $AEGISFLOW_API_KEY
servers:
  github:
    command: [npx, -y, "@modelcontextprotocol/server-github"]   # or, over HTTP:
    # url: https://mcp.example.com/mcp
    # headers: {X-Team: platform}
    env: {GITHUB_PERSONAL_ACCESS_TOKEN: "..."}
    target_args: [[owner, repo], [path]]
    capabilities: {create_issue: write}
    call_timeout: 300
    refusals_as_results: false    # true: blocks and reviews as tool results with isError
    restarts: 3                   # restart the server this many times if it exits
```

Loading is strict: unknown keys and wrong types are errors that name the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aegisflow.envelope import CAPABILITIES
from aegisflow.errors import InputError, OperationalError
from aegisflow.policy.normalize import McpServer

TOP_KEYS = {"service", "api_key_file", "timeout", "servers"}
SERVER_KEYS = {
    "command",
    "url",
    "headers",
    "env",
    "target_args",
    "capabilities",
    "call_timeout",
    "max_message",
    "refusals_as_results",
    "restarts",
}


class ConfigError(InputError):
    reference = "mcp-config"


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """One upstream: a ``command`` over stdio, or a Streamable HTTP ``url``."""

    server: McpServer
    command: tuple[str, ...] = ()
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    call_timeout: float = 300.0
    max_message: int = 16 << 20
    refusals_as_results: bool = False
    restarts: int = 0


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    service: str | None
    api_key_file: Path | None
    timeout: float | None
    servers: Mapping[str, UpstreamConfig]

    def api_key(self) -> str | None:
        """The agent key from ``api_key_file`` (which must be private), if one is named.

        Raises:
            ConfigError: If the file is readable by others or empty.
            OperationalError: If it cannot be read.
        """
        if self.api_key_file is None:
            return None
        path = self.api_key_file.expanduser()
        try:
            mode = path.stat().st_mode
            key = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise OperationalError(f"cannot read api_key_file {path}: {e.strerror}") from e
        if mode & 0o077:
            raise ConfigError(
                f"api_key_file {path} is readable by others", hint=f"chmod 600 {path}"
            )
        if not key:
            raise ConfigError(f"api_key_file {path} is empty")
        return key


def load_config(path: Path) -> BridgeConfig:
    """Read and check the bridge configuration at ``path``.

    Raises:
        ConfigError: On malformed YAML, unknown keys or wrong types.
        OperationalError: If the file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise OperationalError(f"cannot read {path}: {e.strerror}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    where = str(path)
    top = _mapping(data, where)
    _known(top, TOP_KEYS, where)
    servers = _mapping(top.get("servers"), f"{where}: servers")
    if not servers:
        raise ConfigError(f"{where}: servers names no MCP server")
    key_file = top.get("api_key_file")
    return BridgeConfig(
        service=_optional_text(top, "service", where),
        api_key_file=Path(_text(key_file, f"{where}: api_key_file")) if key_file else None,
        timeout=_optional_number(top, "timeout", where),
        servers={
            name: _server(str(name), spec, f"{where}: servers.{name}")
            for name, spec in servers.items()
        },
    )


def _server(name: str, spec: object, where: str) -> UpstreamConfig:
    fields = _mapping(spec, where)
    _known(fields, SERVER_KEYS, where)
    command, url = fields.get("command"), fields.get("url")
    if (command is None) == (url is None):
        raise ConfigError(f"{where}: give command (stdio) or url (Streamable HTTP), not both")
    if command is not None and (
        not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command)
    ):
        raise ConfigError(f"{where}: command must be a non-empty list of strings")
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("http://", "https://"))
    ):
        raise ConfigError(f"{where}: url must be an http:// or https:// URL")
    headers = _mapping(fields.get("headers", {}), f"{where}.headers")
    env = _mapping(fields.get("env", {}), f"{where}.env")
    capabilities = _mapping(fields.get("capabilities", {}), f"{where}.capabilities")
    for tool, capability in capabilities.items():
        if capability not in CAPABILITIES:
            known = ", ".join(CAPABILITIES)
            raise ConfigError(f"{where}.capabilities.{tool}: {capability!r} is not one of {known}")
    kwargs: dict[str, Any] = {
        "name": name,
        "capabilities": {str(k): v for k, v in capabilities.items()},
    }
    if "target_args" in fields:
        groups = fields["target_args"]
        if not isinstance(groups, list) or not all(
            isinstance(g, list) and g and all(isinstance(a, str) for a in g) for g in groups
        ):
            raise ConfigError(f"{where}.target_args must be a list of lists of argument names")
        kwargs["target_args"] = tuple(tuple(g) for g in groups)
    try:
        server = McpServer(**kwargs)
    except InputError as e:
        raise ConfigError(f"{where}: {e.message}") from None
    return UpstreamConfig(
        server=server,
        command=tuple(command or ()),
        url=url,
        headers={str(k): _text(v, f"{where}.headers.{k}") for k, v in headers.items()},
        env={str(k): _text(v, f"{where}.env.{k}") for k, v in env.items()},
        call_timeout=_optional_number(fields, "call_timeout", where) or 300.0,
        max_message=int(_optional_number(fields, "max_message", where) or 16 << 20),
        refusals_as_results=_flag(fields, "refusals_as_results", where),
        restarts=int(_optional_number(fields, "restarts", where) or 0),
    )


def _flag(fields: Mapping[str, Any], key: str, where: str) -> bool:
    value = fields.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key} must be true or false")
    return value


def _mapping(value: object, where: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping")
    return value


def _known(fields: Mapping[Any, Any], allowed: set[str], where: str) -> None:
    unknown = set(map(str, fields)) - allowed
    if unknown:
        names, known = ", ".join(sorted(unknown)), ", ".join(sorted(allowed))
        raise ConfigError(f"{where}: unknown keys {names} (allowed: {known})")


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string")
    return value


def _optional_text(fields: Mapping[str, Any], key: str, where: str) -> str | None:
    return _text(fields[key], f"{where}: {key}") if key in fields else None


def _optional_number(fields: Mapping[str, Any], key: str, where: str) -> float | None:
    if key not in fields:
        return None
    value = fields[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{where}: {key} must be a positive number")
    return float(value)
