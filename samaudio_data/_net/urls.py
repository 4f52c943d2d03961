"""Where a request goes, judged the way the HTTP stack will connect.

``requests`` hands every URL to urllib3, which parses it with :func:`urllib3.util.parse_url`
and connects to the host that parser finds. Python's :func:`urllib.parse.urlsplit` reads
some URLs differently (``http://a:1\\@b:2/x`` is host ``b`` for it, ``a`` for urllib3), so
deciding where the API key goes with one parser while sending with the other leaks it. Every
URL the client sends to (the endpoint, a queue's status and result URLs, a redirect's
``Location``, a result file) goes through :func:`check_url` first: it parses with urllib3's
parser and refuses anything whose meaning could differ between parsers: backslashes,
user information (``user:pass@``), whitespace and control characters, a scheme other than
http(s), a missing host. :func:`origin` is then computed from the same parse.

URLs can carry secrets in their query string; :func:`redact_url` replaces the key before a
URL is written anywhere (the journal), and :func:`unredact_url` puts it back when a
journalled URL, checked again, is followed on the endpoint's own origin.

Example
-------
>>> origin("https://API.segmind.com/v2/requests/1/status")
('https', 'api.segmind.com', 443)
>>> try:
...     check_url("http://127.0.0.1:1\\\\@127.0.0.1:2/x")
... except errors.RedirectError as exc:
...     print(exc.message.split("': ")[1])
it holds a backslash, which HTTP libraries read differently; nothing was sent there.
"""

from __future__ import annotations

from urllib3.util import parse_url

from .. import errors

REDACTED = "***"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_problem(url: object) -> str | None:
    """Why ``url`` is not a URL to send to, or None.

    >>> url_problem("http://u:p@h/x"), url_problem("https://h/x") is None
    ('it holds user information (user@host), which can hide where it goes', True)
    """
    if not isinstance(url, str) or not url:
        return "it is not a non-empty string"
    if "\\" in url:
        return "it holds a backslash, which HTTP libraries read differently"
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return "it holds whitespace or control characters"
    if not url.isascii():
        return "it holds non-ASCII characters"
    try:
        parts = parse_url(url)
    except Exception:  # urllib3's LocationParseError and friends
        return "it cannot be parsed"
    if (parts.scheme or "").lower() not in _DEFAULT_PORTS:
        return "it is not an http(s) URL"
    if parts.auth is not None or "@" in (url.split("/", 3)[2] if url.count("/") >= 2 else ""):
        return "it holds user information (user@host), which can hide where it goes"
    if not parts.host:
        return "it has no host"
    return None


def check_url(
    url: object, *, error: type[errors.SamAudioError] = errors.RedirectError, redact=str
) -> str:
    """``url`` if a request may be sent to it (see the module docstring), else ``error``.

    >>> check_url("https://api.segmind.com/v1/sam-audio-large")
    'https://api.segmind.com/v1/sam-audio-large'
    """
    why = url_problem(url)
    if why is not None:
        raise error(
            f"refusing the URL {redact(repr(url))[:300]}: {why}; nothing was sent there.",
            hint="Only plain http(s) URLs on the endpoint's own origin receive the key.",
        )
    return url  # type: ignore[return-value]


def origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` as urllib3 will connect (call :func:`check_url` first).

    >>> origin("http://127.0.0.1:8000/v1/m") == origin("HTTP://127.0.0.1:8000/v2/x")
    True
    """
    parts = parse_url(url)
    scheme = (parts.scheme or "").lower()
    return scheme, (parts.host or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def same_origin(url: object, reference: str) -> bool:
    """Whether ``url`` is a sendable URL on ``reference``'s origin.

    >>> same_origin("http://h:1\\\\@evil:2/x", "http://h:1/v1/m"), same_origin(
    ...     "http://h:1/v2/s", "http://h:1/v1/m")
    (False, True)
    """
    return url_problem(url) is None and origin(url) == origin(reference)  # type: ignore[arg-type]


def redact_url(url: str, key: str | None) -> str:
    """``url`` with ``key`` replaced by ``***`` (before it is written anywhere).

    >>> redact_url("https://h/s?api_key=sk-1", "sk-1")
    'https://h/s?api_key=***'
    """
    return url.replace(key, REDACTED) if key else url


def unredact_url(url: str, key: str | None) -> str:
    """A journalled ``url`` with the key put back where it was redacted.

    >>> unredact_url("https://h/s?api_key=***", "sk-1")
    'https://h/s?api_key=sk-1'
    """
    return url.replace(REDACTED, key) if key and REDACTED in url else url
