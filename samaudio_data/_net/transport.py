"""One HTTP exchange with the endpoint: the connection pool, the key, and what comes back.

:class:`Transport` owns a ``requests`` session and the API key. It sends the key only to
the endpoint's own origin (scheme, host and port), and never follows a redirect elsewhere:
a 307/308 to the same origin is followed (at most three times), any other redirect is a
:class:`~samaudio_data.errors.RedirectError` and nothing is sent to the new address. It reads
answers with a size cap and a total deadline per attempt (a server that drips bytes cannot
keep a call alive past ``timeout``), checks that the body is as long as announced, and turns
every failure into a typed error that keeps the response (status, headers, a body excerpt,
the request id) and the cause, with the key redacted wherever it might appear.

Example
-------
>>> from samaudio_data.testing import LocalEndpoint
>>> with LocalEndpoint(keys={"k": 1.0}) as ep:
...     t = Transport(ep.url, "k", timeout=(5, 30))
...     status, body, headers = t.request("GET", t.credits_url)
...     t.close()
>>> status, body[:11]
(200, b'{"credits":')
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import threading
import time
from typing import Any
from urllib.parse import urljoin

import requests
from urllib3.util import Url, parse_url

from .. import errors
from .._version import __version__
from ..audio import excerpt
from .retry import parse_retry_after
from .urls import check_url, origin, same_origin, unredact_url
from .wire import GatedAdapter

Timeout = float | tuple[float, float]
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 3
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid", "cf-ray")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_local(url: str) -> bool:
    """True when ``url`` points at this machine (loopback address or localhost).

    >>> is_local("http://127.0.0.1:8000/v1/m"), is_local("https://api.segmind.com/v1/m")
    (True, False)
    """
    host = origin(url)[1]
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Transport:
    """Session, key and single HTTP exchanges for one endpoint; see the module docstring."""

    def __init__(
        self,
        endpoint: str,
        api_key: str | None,
        *,
        timeout: Timeout = (10.0, 300.0),
        pool_size: int = 16,
    ) -> None:
        self.endpoint = endpoint
        self._key = api_key
        self.timeout = timeout
        self._pool_size = pool_size
        self._session: requests.Session | None = None
        self._lock = threading.Lock()

    # --- configuration ---------------------------------------------------------------------

    @property
    def has_key(self) -> bool:
        """Whether a key is set (the key itself is never exposed)."""
        return bool(self._key)

    @property
    def account(self) -> str:
        """The account's identity: the endpoint and a one-way hash of the key, never the key
        (16 hex digits; it names the account's shared limits)."""
        h = hashlib.sha256(
            b"samaudio-account\0" + self.endpoint.encode() + b"\0" + (self._key or "").encode()
        )
        return h.hexdigest()[:16]

    @property
    def credits_url(self) -> str:
        """``GET`` URL of the account's credits, on the endpoint's origin."""
        parts = parse_url(self.endpoint)  # rebuilt from the parts urllib3 connects to
        return Url(
            scheme=parts.scheme, host=parts.host, port=parts.port, path="/v1/get-user-credits"
        ).url

    @property
    def total_timeout(self) -> float:
        """Seconds one attempt may take in all (the read timeout, or the single timeout)."""
        return float(self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout)

    def redact(self, value: Any) -> str:
        """``str(value)`` with the API key replaced by ``***``."""
        text = str(value)
        return text.replace(self._key, "***") if self._key else text

    def restore(self, url: str) -> str:
        """A URL redacted by :meth:`redact` (as journalled) with the key put back.

        >>> t = Transport("https://h/v1/m", "sk-1")
        >>> t.redact("https://h/s?k=sk-1"), t.restore(t.redact("https://h/s?k=sk-1"))
        ('https://h/s?k=***', 'https://h/s?k=sk-1')
        """
        return unredact_url(url, self._key)

    @property
    def session(self) -> requests.Session:
        """The connection pool (created on first use, shared by threads)."""
        with self._lock:
            if self._session is None:
                s = requests.Session()
                adapter = GatedAdapter(pool_connections=4, pool_maxsize=self._pool_size)
                s.mount("http://", adapter)
                s.mount("https://", adapter)
                s.headers["User-Agent"] = f"samaudio_data/{__version__}"
                s.trust_env = False  # no proxy or netrc credentials picked up silently
                self._session = s
            return self._session

    def close(self) -> None:
        """Close the connection pool."""
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    # --- exchanges ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        json_body: dict | None = None,
        with_key: bool = True,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> tuple[int, bytes, dict[str, str]]:
        """One exchange; returns ``(status, body, headers)`` for any status below 300.

        Error statuses raise their typed error (with the response); ``with_key`` requests
        are refused unless ``url`` is on the endpoint's origin, judged as urllib3 connects
        (:func:`samaudio_data._net.urls.check_url`).
        """
        check_url(url, redact=self.redact)
        if with_key and origin(url) != origin(self.endpoint):
            raise errors.RedirectError(
                f"refusing to send the API key to {self.redact(url)}: it is not on the "
                f"endpoint's origin ({self.endpoint}).",
                hint="Only the endpoint's own origin ever receives the key.",
            )
        headers = {"Content-Type": "application/json"} if json_body is not None else {}
        if with_key:
            headers["x-api-key"] = self._key or ""
        for _ in range(_MAX_REDIRECTS + 1):
            status, body, resp_headers = self._exchange(method, url, json_body, headers, max_bytes)
            if status in (301, 302, 303, 307, 308):
                location = resp_headers.get("location", "")
                target = urljoin(url, location)
                if "\\" in location or any(ord(c) < 0x21 for c in location):
                    target = location  # judged as sent: never "repaired" by urljoin
                if status in (307, 308) and same_origin(target, url):
                    url = target
                    continue
                raise errors.RedirectError(
                    f"the endpoint answered {status} redirecting to {self.redact(target)}; "
                    "the request was not repeated there, so the API key never left the "
                    "endpoint's origin.",
                    status_code=status,
                    hint="If the endpoint moved, set SAMAUDIO_ENDPOINT (or endpoint=) to the "
                    "new URL.",
                    response=self._info(status, url, resp_headers, body),
                )
            if status >= 300:
                raise self._status_error(status, url, resp_headers, body)
            return status, body, resp_headers
        raise errors.RedirectError(
            f"more than {_MAX_REDIRECTS} redirects from {self.redact(url)}.",
            hint="Check the endpoint URL.",
        )

    def _exchange(self, method, url, json_body, headers, max_bytes):
        deadline = time.monotonic() + self.total_timeout
        try:
            resp = self.session.request(
                method,
                url,
                json=json_body,
                headers=headers,
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise errors.APITimeoutError(
                f"no answer from {url} within the timeout ({self.timeout}).",
                hint="Raise timeout= for long clips or cold starts.",
            ) from exc
        except requests.ConnectionError as exc:
            raise self._connection_error(url, exc) from exc
        except requests.RequestException as exc:
            raise errors.APIConnectionError(
                f"the request to {url} failed: {self.redact(exc)}"
            ) from exc
        try:
            body = self._read(resp, url, deadline, max_bytes)
        finally:
            resp.close()
        return resp.status_code, body, {k.lower(): v for k, v in resp.headers.items()}

    def _read(self, resp: requests.Response, url: str, deadline: float, max_bytes: int) -> bytes:
        """The whole body, within the deadline and the size cap, as long as announced."""
        timer = threading.Timer(max(0.0, deadline - time.monotonic()), _shutdown, (resp,))
        timer.daemon = True
        timer.start()
        chunks, size = [], 0
        try:
            for chunk in resp.iter_content(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise errors.ResponseDecodeError(
                        f"the answer from {url} is larger than {max_bytes} bytes, far more than "
                        "this input can need; it was not read further.",
                        status_code=resp.status_code,
                    )
                if time.monotonic() > deadline:
                    raise errors.APITimeoutError(
                        f"the answer from {url} did not arrive whole within "
                        f"{self.total_timeout:g} s (the total deadline of one attempt)."
                    )
                chunks.append(chunk)
        except (
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            if time.monotonic() >= deadline:
                raise errors.APITimeoutError(
                    f"the answer from {url} did not arrive whole within "
                    f"{self.total_timeout:g} s (the total deadline of one attempt)."
                ) from exc
            raise errors.APIConnectionError(
                f"the connection dropped while reading the answer from {url} "
                f"({size} bytes arrived): {self.redact(exc)}"
            ) from exc
        except requests.Timeout as exc:
            raise errors.APITimeoutError(
                f"the answer from {url} stalled past the read timeout."
            ) from exc
        finally:
            timer.cancel()
        body = b"".join(chunks)
        announced = resp.headers.get("Content-Length")
        if (
            announced
            and announced.isdigit()
            and not resp.headers.get("Content-Encoding")
            and int(announced) != len(body)
        ):
            raise errors.APIConnectionError(
                f"the answer from {url} was cut short: {len(body)} of {announced} bytes arrived.",
                status_code=resp.status_code,
            )
        return body

    # --- errors ------------------------------------------------------------------------------

    def _connection_error(self, url: str, exc: BaseException) -> errors.APIError:
        refused = (
            isinstance(_root_cause(exc), ConnectionRefusedError) or "refused" in str(exc).lower()
        )
        if refused and is_local(url):
            return errors.EndpointDownError(
                f"nothing is listening at {url} (connection refused).",
                hint="Start the local endpoint (samaudio-data serve --port PORT) or point "
                "SAMAUDIO_ENDPOINT / endpoint= at a running one.",
            )
        err = errors.APIConnectionError(f"could not connect to {url}: {self.redact(exc)}")
        err.unreachable = unreachable_reason(exc)  # every request would meet it: fail fast
        return err

    def _info(
        self, status: int, url: str, headers: dict[str, str], body: bytes
    ) -> errors.ResponseInfo:
        request_id = next((headers[h] for h in _REQUEST_ID_HEADERS if h in headers), None)
        safe = {k: self.redact(v) for k, v in headers.items() if k != "set-cookie"}
        return errors.ResponseInfo(
            status=status,
            url=self.redact(url),
            headers=safe,
            body=self.redact(excerpt(body, 500)),
            request_id=request_id,
        )

    def _status_error(
        self, status: int, url: str, headers: dict[str, str], body: bytes
    ) -> errors.APIStatusError:
        return errors.error_for_status(
            status,
            self.redact(server_message(status, body)),
            retry_after=parse_retry_after(headers.get("retry-after")),
            response=self._info(status, url, headers, body),
        )


def server_message(status: int, body: bytes) -> str:
    """The server's own message in an error body (JSON ``error``/``message``/``detail``).

    >>> server_message(401, b'{"error": "invalid key"}'), server_message(502, b"<html>..")
    ('invalid key', 'HTTP 502 (an HTML error page)')
    """
    import json

    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict):
        for k in ("error", "message", "detail"):
            if doc.get(k):
                return str(doc[k])[:500]
    text = body.decode("utf-8", errors="replace").strip()
    if text.lower().startswith(("<!doctype", "<html")):
        return f"HTTP {status} (an HTML error page)"
    return excerpt(body, 300).strip("'") if text else f"HTTP {status}"


def unreachable_reason(exc: BaseException) -> str | None:
    """Why no request can reach the endpoint, for a connection-level failure that every
    request would meet: its name does not resolve, the connection is refused, TLS fails.
    None for anything that may pass on its own (a dropped connection, a timeout).

    >>> unreachable_reason(requests.ConnectionError(socket.gaierror(-2, "Name or service "
    ...                                                             "not known")))
    "the endpoint's host name does not resolve (DNS)"
    >>> unreachable_reason(requests.ConnectionError("Connection aborted.")) is None
    True
    """
    import ssl

    root = _root_cause(exc)
    text = f"{exc} {root}".lower()
    if (
        isinstance(root, socket.gaierror)
        or "name or service not known" in text
        or "failed to resolve" in text
        or "nodename nor servname" in text
        or "temporary failure in name resolution" in text
    ):
        return "the endpoint's host name does not resolve (DNS)"
    if isinstance(root, ConnectionRefusedError) or "connection refused" in text:
        return "the endpoint's host refuses the connection"
    if isinstance(exc, requests.exceptions.SSLError) or isinstance(root, ssl.SSLError):
        return "the TLS handshake with the endpoint fails"
    return None


def _root_cause(exc: BaseException) -> BaseException:
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = (
            exc.__cause__
            or exc.__context__
            or (exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None)
        )
        reason = getattr(exc, "reason", None)
        nxt = reason if isinstance(reason, BaseException) else nxt
        if nxt is None:
            break
        exc = nxt
    return exc


def _shutdown(resp: requests.Response) -> None:
    """At the deadline, shut the socket down so a blocked read returns at once."""
    raw = getattr(resp, "raw", None)
    conn = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    if sock is None:
        fp = getattr(raw, "_fp", None)
        sock = getattr(getattr(getattr(fp, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
