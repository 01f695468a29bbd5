"""The ``/metrics`` HTTP endpoint: a quiet WSGI server on its own thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

#: How often the serving loop checks for shutdown: bounds how long :meth:`MetricsHooks.close`
#: takes (prometheus_client's ``start_http_server`` uses 0.5 s, felt on every shutdown).
_POLL_INTERVAL = 0.05


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not print an access-log line per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serve_metrics(
    registry: CollectorRegistry, host: str, port: int, routes: dict[str, WsgiApp] | None = None
) -> tuple[Any, threading.Thread]:
    """Start a ``/metrics`` server thread, like ``prometheus_client.start_http_server``;
    ``routes``: more apps by path prefix (the observer page at ``/observer``)."""
    metrics_app = make_wsgi_app(registry)
    if not routes:
        return serve_app(metrics_app, host, port)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for prefix, routed in routes.items():
            if path == prefix or path.startswith(prefix + "/"):
                return routed(environ, start_response)
        served: Iterable[bytes] = metrics_app(environ, start_response)
        return served

    return serve_app(app, host, port)


def serve_app(app: WsgiApp, host: str, port: int) -> tuple[Any, threading.Thread]:
    """Serve a WSGI app on a daemon thread (quiet, IPv4 or IPv6 from the host)."""
    # Pick IPv4 or IPv6 from the host, as prometheus_client does (127.0.0.1, ::1, 0.0.0.0...).
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    family, addr = info[0], str(info[4][0])

    class _Server(ThreadingWSGIServer):
        address_family = family

    server = make_server(addr, port, app, _Server, handler_class=_QuietHandler)

    def serve() -> None:
        from minions_actors.support.signals import block_shutdown_signals

        block_shutdown_signals()  # request threads inherit the mask
        server.serve_forever(poll_interval=_POLL_INTERVAL)

    thread = threading.Thread(
        target=serve,
        name=f"minions-metrics-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return server, thread
