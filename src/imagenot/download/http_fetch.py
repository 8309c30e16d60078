"""Bounded HTTP GETs inside img2dataset: a total deadline per request and a cap on the response size.

img2dataset's own `download_image` hands urllib a socket timeout, which bounds each read, not the request: a
server that trickles one byte every half second holds a download thread for as long as it likes, and a 200 MB
body is buffered whole (gigabytes of RSS over many threads). Here `BoundedDownloader` is img2dataset's
`Downloader`, which installs `download_image` below in each worker process before it fetches a shard:

- a watchdog timer shuts the connection's socket down when the request's deadline (`timeout` seconds for
  connecting, headers, redirects and body together) has passed; the error says "timed out";
- the body is read in chunks and abandoned as soon as it passes `max_bytes` (or at once when Content-Length
  says it will); the error says "response too large";
- redirects go to http(s) urls only (urllib would follow ftp:// too, and refuses file://); the error says
  "redirect refused".

Everything else (threads, retries, X-Robots-Tag opt-outs via img2dataset's own `is_disallowed`, shard
writing and stats) stays img2dataset's. This module imports img2dataset: import it only where it runs.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import importlib
import io
import logging
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from img2dataset import downloader as i2d_downloader

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_USER_AGENT = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:72.0) Gecko/20100101 Firefox/72.0"
_MAX_BYTES = 50 * 1000 * 1000  # set per worker process by BoundedDownloader


class ResponseTooLarge(OSError):
    pass


class _Deadline:
    """Shuts down every socket of one request when its time is up (a blocked read then returns at once)."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._conns: list[http.client.HTTPConnection] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def connected(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._conns.append(conn)
            if self.expired:
                _shutdown(conn)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for conn in self._conns:
                _shutdown(conn)

    def connection_factory(self, cls: type[http.client.HTTPConnection]) -> Callable[..., Any]:
        def make(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            conn = cls(host, **kwargs)
            connect = conn.connect

            def tracked_connect() -> None:
                connect()
                self.connected(conn)

            conn.connect = tracked_connect  # type: ignore[method-assign]
            return conn

        return make


def _shutdown(conn: http.client.HTTPConnection) -> None:
    sock = getattr(conn, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._deadline.connection_factory(http.client.HTTPConnection), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._deadline.connection_factory(http.client.HTTPSConnection), req,
                            context=self._context)


class _HTTPOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect refused: to a {scheme or 'relative'}:// url "
                                         f"({newurl[:200]})", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@contextlib.contextmanager
def _open(url: str, timeout: float, user_agent: str) -> Iterator[tuple[http.client.HTTPResponse, _Deadline]]:
    with _Deadline(timeout) as deadline:
        opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline),
                                             _HTTPOnlyRedirects())
        request = urllib.request.Request(url, data=None, headers={"User-Agent": user_agent})
        try:
            with opener.open(request, timeout=timeout) as response:
                yield response, deadline
        except (OSError, http.client.HTTPException) as exc:
            if deadline.expired and not isinstance(exc, (ResponseTooLarge, urllib.error.HTTPError)):
                raise TimeoutError(f"timed out: no complete response within the {timeout:g} s deadline") from None
            raise
        if deadline.expired:
            raise TimeoutError(f"timed out: no complete response within the {timeout:g} s deadline")


def read_body(response: http.client.HTTPResponse, max_bytes: int, deadline: _Deadline) -> bytes:
    """The body, in chunks, refused as soon as it would pass `max_bytes`."""
    declared = response.headers.get("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"response too large: Content-Length {int(declared)} > {max_bytes} bytes")
    buf = bytearray()
    while True:
        chunk = response.read1(_CHUNK)
        if not chunk:
            break
        buf += chunk
        if len(buf) > max_bytes:
            raise ResponseTooLarge(f"response too large: more than {max_bytes} bytes")
        if deadline.expired:
            break
    return bytes(buf)


def download_image(row: tuple[Any, str], timeout: float, user_agent_token: str | None,
                   disallowed_header_directives: Any) -> tuple[Any, io.BytesIO | None, str | None]:
    """img2dataset's `download_image` contract: (key, stream or None, error text or None)."""
    key, url = row
    user_agent = _USER_AGENT
    if user_agent_token:
        user_agent += f" (compatible; {user_agent_token}; +https://github.com/rom1504/img2dataset)"
    try:
        with _open(url, timeout, user_agent) as (response, deadline):
            if disallowed_header_directives and i2d_downloader.is_disallowed(
                    response.headers, user_agent_token, disallowed_header_directives):
                return key, None, "Use of image disallowed by X-Robots-Tag directive"
            data = read_body(response, _MAX_BYTES, deadline)
        return key, io.BytesIO(data), None
    except Exception as err:  # noqa: BLE001 - every failure is that row's error text, as in img2dataset
        return key, None, str(err)


def install(max_bytes: int) -> None:
    """Make img2dataset's download loop in this process use `download_image` above."""
    global _MAX_BYTES
    _MAX_BYTES = int(max_bytes)
    i2d_downloader.download_image = download_image


class BoundedDownloader(i2d_downloader.Downloader):
    """img2dataset's Downloader, with the bounded GET installed in whichever process runs a shard."""

    def __init__(self, *args: Any, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_bytes = int(max_bytes)

    def __call__(self, row: Any) -> Any:
        install(self.max_bytes)
        return super().__call__(row)


@contextlib.contextmanager
def bounded_downloads(max_bytes: int) -> Iterator[None]:
    """While active, `img2dataset.download` builds a BoundedDownloader instead of its own Downloader."""
    main = importlib.import_module("img2dataset.main")
    if not hasattr(main, "Downloader") or not hasattr(i2d_downloader, "download_image"):
        log.warning("this img2dataset version has no Downloader/download_image to bound: requests are limited "
                    "by its per-read timeout only, and bodies are not capped")
        yield
        return
    saved = main.Downloader
    main.Downloader = functools.partial(BoundedDownloader, max_bytes=max_bytes)
    try:
        yield
    finally:
        main.Downloader = saved
