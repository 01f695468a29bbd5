"""The observer's WSGI app: the page, its static files and the JSON endpoints behind it.

The page polls (see docs/observer.md): each poll asks only for what is on screen (the
expanded nodes' pages, the events since the last one seen), so an open page costs one
short request a second and a closed one nothing. Actions (stop, restart, retry, discard,
cancel) are POSTs refused with 403 unless the app was started with a token and the request
carries it (``X-Observer-Token``).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qs

from minions_actors.errors import MinionNotFound, MinionsError

PREFIX = "/observer"
_STATIC = {"observer.js": "text/javascript", "observer.css": "text/css",
           "index.html": "text/html"}
_ACTIONS = {"stop": "path", "restart": "path", "retry": "id", "discard": "id",
            "cancel": "id"}
_PAGE = 200  # rows per page unless the request asks for fewer


class Source(Protocol):
    """What the app reads: the live system (``live.LiveSource``) or a stopped app's store
    (``ops.observe.StoreSource``), the same endpoints either way."""

    live: bool

    def overview(self) -> dict[str, Any]: ...
    def parts(self) -> dict[str, Any]: ...
    def children(self, path: str, offset: int, limit: int) -> dict[str, Any]: ...
    def search(self, query: str, limit: int) -> dict[str, Any]: ...
    def minion(self, path: str) -> dict[str, Any]: ...
    def events(self, since: int) -> list[dict[str, Any]]: ...
    def workflows(self, status: str | None, limit: int) -> dict[str, Any]: ...
    def workflow(self, workflow_id: str) -> dict[str, Any] | None: ...


class _HttpError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def _static(name: str) -> bytes:
    return (resources.files("minions_actors.observer") / "static" / name).read_bytes()


def _int(query: dict[str, list[str]], name: str, default: int, top: int) -> int:
    raw = query.get(name, [str(default)])[0]
    try:
        value = int(raw)
    except ValueError:
        raise _HttpError("400 Bad Request", f"{name} must be an integer, got {raw!r}") from None
    return max(0, min(value, top))


class ObserverApp:
    """The WSGI callable mounted at ``/observer`` (see the module docstring)."""

    def __init__(self, source: Source, token: str | None = None) -> None:
        self.source = source
        self.token = token if source.live else None  # a stopped app's store is read-only

    @property
    def actions(self) -> bool:
        return self.token is not None

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")[len(PREFIX):].strip("/")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            if environ.get("REQUEST_METHOD", "GET") == "POST":
                status, ctype, body = "200 OK", "application/json", self._post(path, environ)
            else:
                status, ctype, body = self._get(path, query)
        except _HttpError as exc:
            status, ctype = exc.status, "application/json"
            body = json.dumps({"error": str(exc)}).encode()
        except MinionsError as exc:  # no such minion (404), or the store said no (409)
            status = "404 Not Found" if isinstance(exc, MinionNotFound) else "409 Conflict"
            ctype = "application/json"
            body = json.dumps({"error": str(exc)}).encode()
        except Exception as exc:  # a bug here must not print a traceback per poll
            status, ctype = "500 Internal Server Error", "application/json"
            body = json.dumps({"error": f"the observer failed: {type(exc).__name__}"}).encode()
        start_response(status, [("Content-Type", f"{ctype}; charset=utf-8"),
                                ("Cache-Control", "no-store"),
                                ("X-Content-Type-Options", "nosniff"),
                                ("Content-Length", str(len(body)))])
        return [body]

    def _get(self, path: str, query: dict[str, list[str]]) -> tuple[str, str, bytes]:
        if path in ("", "index.html"):
            return "200 OK", "text/html", _static("index.html")
        if path.startswith("static/") and path[7:] in _STATIC:
            return "200 OK", _STATIC[path[7:]], _static(path[7:])
        if not path.startswith("api/"):
            raise _HttpError("404 Not Found", f"no observer page at /observer/{path}")
        data = self._api(path[4:], query)
        return "200 OK", "application/json", json.dumps(data, default=str).encode()

    def _api(self, name: str, query: dict[str, list[str]]) -> Any:
        def arg(key: str) -> str:
            return query.get(key, [""])[0]

        src = self.source
        if name == "config":
            return {"live": src.live, "actions": self.actions}
        if name == "overview":
            return src.overview()
        if name == "parts":
            return src.parts()
        if name == "children":
            return src.children(arg("path"), _int(query, "offset", 0, 10**9),
                                _int(query, "limit", _PAGE, _PAGE) or _PAGE)
        if name == "search":
            return src.search(arg("q"), _int(query, "limit", _PAGE, _PAGE) or _PAGE)
        if name == "minion":
            return src.minion(arg("path"))
        if name == "events":
            return src.events(_int(query, "since", 0, 10**12))
        if name == "workflows":
            return src.workflows(arg("status") or None, _int(query, "limit", _PAGE, _PAGE))
        if name == "workflow":
            found = src.workflow(arg("id"))
            if found is None:
                raise _HttpError("404 Not Found", f"no workflow with id {arg('id')!r}")
            return found
        raise _HttpError("404 Not Found", f"no observer endpoint {name!r}")

    def _post(self, path: str, environ: dict[str, Any]) -> bytes:
        action = path.removeprefix("api/action/")
        if action not in _ACTIONS or not path.startswith("api/action/"):
            raise _HttpError("404 Not Found", f"no observer action at /observer/{path}")
        given = environ.get("HTTP_X_OBSERVER_TOKEN", "")
        if self.token is None:
            raise _HttpError("403 Forbidden", "actions are off: start the app with "
                            "observer_token=... to allow them (a stopped app's store is "
                            "read-only)")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise _HttpError("403 Forbidden", "wrong or missing X-Observer-Token")
        target = self._target(environ, _ACTIONS[action])
        result = getattr(self.source, action)(target)
        return json.dumps(result, default=str).encode()

    @staticmethod
    def _target(environ: dict[str, Any], key: str) -> str:
        try:
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(min(size, 65536)) or b"{}")
        except ValueError:
            raise _HttpError("400 Bad Request", "the body must be JSON") from None
        value = body.get(key) if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise _HttpError("400 Bad Request", f"the body must be JSON with a {key!r} string")
        return value
