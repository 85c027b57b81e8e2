"""One JSON request to the service over HTTP/1.1, on a plain socket.

``http.client`` and ``urllib`` import the email package and cost the hook about 20 ms of
start-up on every tool call; a hook sends one small request and reads one bounded
answer, which needs neither. TLS is imported only for an ``https`` URL.
"""

from __future__ import annotations

import json
import socket
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the hook 3 ms

if TYPE_CHECKING:
    from typing import Any

MAX_ANSWER = 1 << 20


class WireError(Exception):
    """The service could not be reached, did not answer in time, or answered nonsense."""


def post_json(
    url: str, path: str, body: Any, *, headers: dict[str, str], timeout: float
) -> tuple[int, Any]:
    """POST ``body`` as JSON to ``url`` + ``path``; return the status and the parsed answer.

    Raises:
        WireError: On a bad URL, a connection failure, the deadline passing, an answer
            over :data:`MAX_ANSWER` bytes, or an answer that is not HTTP with a JSON body.
    """
    scheme, host, port, prefix = _split(url)
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = [
        f"POST {prefix}{path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
    deadline = time.monotonic() + timeout
    try:
        # An ASCII host as bytes: a str would load the IDNA codec (1 ms) to encode it.
        address = host.encode() if host.isascii() else host
        with socket.create_connection((address, port), timeout=timeout) as raw:  # type: ignore[arg-type]
            raw.settimeout(_left(deadline))  # every step shares the one deadline
            conn = _tls(raw, host) if scheme == "https" else raw
            conn.settimeout(_left(deadline))
            conn.sendall(request)
            answer = _read_all(conn, deadline)
    except TimeoutError:
        raise WireError(
            f"the governance service at {url} did not answer in {timeout:g} s"
        ) from None
    except OSError as e:
        raise WireError(
            f"the governance service at {url} is unreachable ({e.strerror or e})"
        ) from None
    return _parse(answer, url)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _split(url: str) -> tuple[str, str, int, str]:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise WireError(f"the service URL must start with http:// or https://, not {url!r}")
    authority, slash, prefix = rest.partition("/")
    if authority.startswith("["):  # [::1]:8081
        host, _, tail = authority[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else tail
    else:
        host, _, port_text = authority.partition(":")
    try:
        port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    except ValueError:
        raise WireError(f"the service URL has a bad port: {url!r}") from None
    if not host or not host.isprintable() or " " in host or not 0 < port < 65536:
        raise WireError(f"the service URL names no host: {url!r}")
    return scheme, host, port, ("/" + prefix.rstrip("/")) if slash and prefix.strip("/") else ""


def _tls(raw: socket.socket, host: str) -> socket.socket:
    import ssl  # noqa: PLC0415 - only for https services

    return ssl.create_default_context().wrap_socket(raw, server_hostname=host)


def _read_all(conn: socket.socket, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        conn.settimeout(_left(deadline))
        chunk = conn.recv(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_ANSWER:
            raise WireError(f"the governance service answered more than {MAX_ANSWER} bytes")
        chunks.append(chunk)
        if _complete(b"".join(chunks)):
            return b"".join(chunks)


def _head(data: bytes) -> tuple[str, dict[str, str], bytes] | None:
    """The status line, the header fields (names lower-cased) and the body so far; None
    while the header is incomplete."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return lines[0], fields, body


def _complete(data: bytes) -> bool:
    """Whether ``data`` holds a whole answer: we close the connection, not the service
    (the side that closes first keeps the socket's TIME_WAIT, and that is cheaper here)."""
    parsed = _head(data)
    if parsed is None:
        return False
    _, fields, body = parsed
    if fields.get("transfer-encoding", "").lower() == "chunked":  # as _parse reads it
        return body.endswith(b"0\r\n\r\n")
    if fields.get("content-length", "").isdigit():
        return len(body) >= int(fields["content-length"])
    return False


def _parse(answer: bytes, url: str) -> tuple[int, Any]:
    parsed = _head(answer)
    status_line = parsed[0].split(" ", 2) if parsed else []
    if parsed is None or len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
        raise WireError(f"the governance service at {url} did not answer HTTP")
    _, fields, body = parsed
    try:
        status = int(status_line[1])
    except ValueError:
        raise WireError(f"the governance service at {url} answered a bad status line") from None
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body, url)
    elif "content-length" in fields:
        body = body[: int(fields["content-length"])] if fields["content-length"].isdigit() else b""
    try:
        return status, json.loads(body)
    except ValueError:
        raise WireError(f"the governance service answered {status} without JSON") from None


def _unchunk(body: bytes, url: str) -> bytes:
    out: list[bytes] = []
    rest = body
    while True:
        size_line, sep, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            raise WireError(f"the governance service at {url} sent a bad chunk") from None
        if not sep or size == 0:
            return b"".join(out)
        out.append(rest[:size])
        rest = rest[size + 2 :]
