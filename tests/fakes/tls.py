"""An https image server on loopback with a certificate for a made-up host name, signed by a throwaway CA.

The client trusts only that CA; the name resolves only through the resolver a test hands the fetcher. A fetch
that succeeds therefore went to the address we checked and verified the certificate for the name in the URL.
"""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme

from tests.fakes.providers import png_bytes


class TlsImages:
    """Serves one PNG at any path over TLS for `hostname`; records the Host header and SNI of every request."""

    def __init__(self, hostname: str = "images.test") -> None:
        self.hostname = hostname
        self.ca = trustme.CA()
        self.png = png_bytes(48, 32)
        self.hosts: list[str] = []
        self.server_names: list[str | None] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(hostname).configure_cert(context)
        context.sni_callback = self._sni
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.images = self  # type: ignore[attr-defined]
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _sni(self, sock: Any, name: str | None, context: ssl.SSLContext) -> None:
        self.server_names.append(name)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def client_context(self) -> ssl.SSLContext:
        """What a client that trusts only this server's CA verifies with."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> TlsImages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        images: TlsImages = self.server.images  # type: ignore[attr-defined]
        images.hosts.append(self.headers.get("Host", ""))
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(images.png)))
        self.end_headers()
        self.wfile.write(images.png)
