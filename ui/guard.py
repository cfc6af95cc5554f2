"""The browser guard of `askdocs serve`: ASGI middleware that keeps web pages out.

A token-less server on 127.0.0.1 is reachable by every page the user's browser opens. Two
ways in are closed here, before any route runs:

- DNS rebinding: a page on attacker.example whose name later resolves to 127.0.0.1 talks to
  the server as a same-origin page. Its requests carry `Host: attacker.example`, so only Host
  names the server was bound for are answered (loopback names, the `--host` address, and
  `--allowed-host` additions); anything else is a 421 before the route runs.
- Cross-site writes: a page may send a "simple" POST (form or text body, no custom header)
  to any origin without asking first, and the server would act on it even though the page
  cannot read the answer. A write is refused when the browser says it comes from another
  origin (`Origin`, `Sec-Fetch-Site`), and a POST must carry something a page cannot send
  without a CORS preflight that we never grant: a JSON content type, an `Authorization`
  header or an `X-Askdocs` header. DELETE and PUT always need a preflight.

CORS stays off unless origins are configured (`--cors-origin`); those origins may then write.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
CLIENT_HEADER = "x-askdocs"  # what a non-browser client (curl -F …) sends with an upload
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# the content types a page may POST to another origin without a preflight (the Fetch spec)
_SIMPLE_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def host_name(host: str) -> str:
    """The name of a Host header value, without port, brackets or a trailing dot, lowercased."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


@dataclass(frozen=True)
class Policy:
    """Which Host names are answered and which other origins may call (CORS)."""

    hosts: frozenset[str]  # names without port; "*" answers any
    cors_origins: frozenset[str] = frozenset()

    @classmethod
    def make(cls, bound: str = "127.0.0.1", allowed: Iterable[str] = (), cors: Iterable[str] = ()):  # noqa: ANN206
        """Loopback names, the address bound (unless a wildcard) and the `allowed` names."""
        hosts = set(LOOPBACK_NAMES) | {host_name(a) for a in allowed if a.strip()}
        if bound and bound not in ("0.0.0.0", "::"):
            hosts.add(host_name(bound if ":" not in bound else f"[{bound}]"))
        origins = {o.strip().rstrip("/").lower() for o in cors if o.strip()}
        return cls(frozenset(hosts), frozenset(origins))

    def host_ok(self, host: str) -> bool:
        return "*" in self.hosts or host_name(host) in self.hosts


def refusal(headers: dict[str, str], method: str, policy: Policy) -> tuple[int, str, str] | None:
    """(status, message, hint) when the request must not reach the app, else None."""
    host = headers.get("host", "")
    if not policy.host_ok(host):
        return (
            421,
            f"This server does not answer for the host name {host_name(host)!r}.",
            "use http://127.0.0.1 or localhost, or start askdocs serve with "
            f"--allowed-host {host_name(host) or 'NAME'} if that name is yours",
        )
    if method in _SAFE_METHODS:
        return None
    origin = headers.get("origin", "").rstrip("/").lower()
    configured = origin in policy.cors_origins
    if origin and origin != "null" and not configured:
        if urlsplit(origin).netloc != host.lower():
            return _cross_site(origin)
    elif origin == "null":  # sandboxed frames and file:// pages
        return _cross_site(origin)
    if (
        headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")
        and not configured
    ):
        return _cross_site(origin or headers.get("sec-fetch-site", ""))
    if method == "POST" and headers.get("sec-fetch-site") != "same-origin":
        # (a same-origin page is /docs itself: a rebound foreign page failed the Host check)
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if (kind in _SIMPLE_TYPES or not kind) and not (
            "authorization" in headers or CLIENT_HEADER in headers
        ):
            return (
                403,
                "A form or text POST without a client header is refused: a web page could send it.",
                "send JSON (content-type: application/json), the API token, or the header "
                "X-Askdocs: 1 with an upload (curl -H 'X-Askdocs: 1' -F files=@FILE …)",
            )
    return None


def _cross_site(origin: str) -> tuple[int, str, str]:
    return (
        403,
        f"A request from another web site ({origin or 'unknown'}) may not change the library.",
        "call the API from a program, or start askdocs serve with --cors-origin ORIGIN",
    )


class BrowserGuard:
    """ASGI middleware applying `refusal` to every HTTP request."""

    def __init__(self, app: Callable, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refused = refusal(headers, scope["method"].upper(), self.policy)
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, message, hint = refused
        error = "HostNotAllowed" if status == 421 else "CrossSiteRequest"
        body = json.dumps({"error": error, "message": message, "hint": hint}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
