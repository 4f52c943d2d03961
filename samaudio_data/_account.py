"""The account: credits left, and the first-run check of key, endpoint and answer format.

:func:`credits` reads ``GET /v1/get-user-credits`` (free). :func:`check` builds a
:class:`CheckReport` without spending anything: whether the key is accepted and what the
account holds, whether the endpoint answers and whether the queue is known to be served,
and the limits as configured. With ``probe=True`` it spends exactly one call on one second
of generated audio and reports what came back (carrier, format, rate, channels, length,
padding), the latency, the provider's ``x-remaining-credits`` and what the call cost.
Every difference from what the library assumes is listed in ``problems`` with what to do;
``ok`` is True when there is none. Nothing in a report contains the API key. The paid
probe call itself, and what it found, live in :mod:`._probe`.

Example
-------
>>> from samaudio_data._net.transport import Transport
>>> from samaudio_data.testing import LocalEndpoint
>>> with LocalEndpoint(keys={"k": 1.5}) as ep:
...     credits(Transport(ep.url, "k"))
1.5
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass, field

import numpy as np
from urllib3.util import parse_url

from . import errors
from ._net.transport import Transport
from ._probe import ProbeResult, probe_call
from .audio import excerpt


def credits(transport: Transport) -> float:
    """Credits left on the account (``credits`` plus ``free-credits``), free of charge."""
    _, body, _ = transport.request("GET", transport.credits_url, max_bytes=1 << 20)
    try:
        doc = json.loads(body)
        return float(doc.get("credits", 0.0)) + float(doc.get("free-credits", 0.0))
    except (ValueError, TypeError, AttributeError) as exc:
        raise errors.ResponseDecodeError(
            f"the credits answer is not the expected JSON: {transport.redact(excerpt(body))}"
        ) from exc


@dataclass
class CheckReport:
    """The result of :meth:`samaudio_data.Client.check`; ``print`` it.

    >>> r = CheckReport(endpoint="https://h/v1/m", transport="auto", key_set=True,
    ...                 credits=3.5, reachable="HTTP 405 to GET (the route exists)",
    ...                 queue="not known yet", limits={"requests_per_minute": 50.0})
    >>> r.ok, str(r).splitlines()[0]
    (True, 'samaudio-data check: OK')
    """

    endpoint: str
    transport: str
    key_set: bool
    credits: float | None = None
    reachable: str = "not checked"
    queue: str = "not known yet"
    limits: dict[str, object] = field(default_factory=dict)
    probe: ProbeResult | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing differs from what the library assumes."""
        return not self.problems

    def __str__(self) -> str:
        head = "OK" if self.ok else f"{len(self.problems)} problem(s)"
        lines = [
            f"samaudio-data check: {head}",
            f"endpoint: {self.endpoint}",
            f"API key: {'set' if self.key_set else 'NOT SET'}",
            "credits: " + ("unknown" if self.credits is None else f"{self.credits:.4f}"),
            f"endpoint reachable: {self.reachable}",
            f"transport: {self.transport}; queue: {self.queue}",
            "limits as configured: " + ", ".join(f"{k}={v}" for k, v in self.limits.items()),
        ]
        if self.probe is not None:
            lines += self.probe.lines()
        lines += [f"problem: {p}" for p in self.problems]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def check(
    transport: Transport, exchange, *, limits: dict[str, object], price_per_call: float, probe=None
) -> CheckReport:
    """Check key, account, endpoint and queue for free; ``probe()`` (if given) spends one call.

    ``exchange`` is the client's :class:`~samaudio_data._net.queue.QueueExchange`; ``probe`` a
    callable returning a :class:`ProbeResult` (raising typed errors).
    """
    report = CheckReport(
        endpoint=transport.endpoint,
        transport=exchange.mode,
        key_set=transport.has_key,
        limits=dict(limits),
    )
    redact = transport.redact
    if not transport.has_key:
        report.problems.append(
            "no API key: set SEGMIND_API_KEY (or pass api_key=) to the key "
            "from the provider's console. Nothing else was checked."
        )
        return report
    _check_account(transport, report, price_per_call)
    _check_reachable(transport, report)
    _check_queue(transport, exchange, report)
    if limits.get("requests_per_minute") is None:
        report.notes.append(
            "requests_per_minute is not set: the client starts with 2 "
            "requests in flight and learns the limit from 429s. Set it to "
            "your plan's (about 5/min free, 50/min paid)."
        )
    if probe is not None and not report.problems:
        before = report.credits
        try:
            report.probe = probe()
        except errors.SamAudioError as exc:
            report.problems.append(redact(f"the probe call failed: {type(exc).__name__}: {exc}"))
            return report
        _check_probe(transport, report, before, price_per_call)
    elif probe is not None:
        report.notes.append("the probe was not sent: fix the problems above first.")
    return report


def _check_account(transport: Transport, report: CheckReport, price: float) -> None:
    redact = transport.redact
    try:
        report.credits = credits(transport)
    except errors.AuthenticationError as exc:
        report.problems.append(
            redact(
                f"the key was refused (401: {exc.message}). Check that SEGMIND_API_KEY holds the "
                "whole key, without quotes or spaces, and that it has not been revoked."
            )
        )
    except errors.PermissionDeniedError as exc:
        report.problems.append(
            redact(
                f"the key is known but forbidden (403: {exc.message}). Check the account's "
                "plan and permissions for this model in the provider's console."
            )
        )
    except errors.NotFoundError:
        report.notes.append(
            f"the credits route {transport.credits_url} is not served: the "
            "key can only be verified by a call (--probe)."
        )
    except errors.SamAudioError as exc:
        report.problems.append(
            redact(f"the account could not be read: {type(exc).__name__}: {exc}")
        )
    else:
        if report.credits < price:
            report.problems.append(
                f"the account holds {report.credits:.4f} credits, less than one call "
                f"(${price:.3f}): every call would be refused with 406. Top up first."
            )


def _check_reachable(transport: Transport, report: CheckReport) -> None:
    # a GET of the model's POST route: any HTTP answer shows the endpoint is there
    try:
        status, _, _ = transport.request("GET", transport.endpoint, max_bytes=1 << 16)
        report.reachable = f"HTTP {status} to GET"
    except errors.RedirectError as exc:
        report.problems.append(transport.redact(f"the endpoint redirects: {exc}"))
        report.reachable = "redirects elsewhere"
    except errors.APIStatusError as exc:
        report.reachable = f"HTTP {exc.status_code} to GET"
        if exc.status_code == 405:
            report.reachable += " (the route exists; calls are POSTs)"
        elif exc.status_code == 404:
            report.notes.append(
                "GET of the endpoint URL answered 404: the URL may be wrong "
                "(SAMAUDIO_ENDPOINT / endpoint=); --probe tells for sure."
            )
    except errors.APIConnectionError as exc:
        report.reachable = "NO"
        report.problems.append(
            transport.redact(
                f"the endpoint cannot be reached: {exc}. Check the network, a proxy or firewall, "
                "and SAMAUDIO_ENDPOINT / endpoint=."
            )
        )


def _check_queue(transport: Transport, exchange, report: CheckReport) -> None:
    if exchange.mode == "sync":
        report.queue = "not used (transport='sync')"
        return
    served = exchange.served()
    if served is None and exchange.submit_url:
        # free: ask for the status of a request that does not exist
        url = (
            parse_url(exchange.submit_url)
            ._replace(path=f"/v2/requests/{uuid.UUID(int=0)}/status", query=None, fragment=None)
            .url
        )
        try:
            transport.request("GET", url, max_bytes=1 << 16)
        except errors.APIStatusError as exc:
            served = False if exc.status_code == 405 else None
        except errors.SamAudioError:
            pass
    if served is True:
        report.queue = "served (requests are queued; polls and fetches are free)"
    elif served is False:
        report.queue = (
            "not served: requests use the synchronous call"
            if exchange.mode == "auto"
            else "NOT served"
        )
        if exchange.mode == "queue":
            report.problems.append(
                "transport='queue' but the endpoint does not serve the "
                "queue: use transport='auto' or 'sync'."
            )
    else:
        report.queue = (
            "not known yet: the first call tries it (a 404/405 there is not "
            "billed, and 'auto' then uses the synchronous call)"
        )


def _check_probe(
    transport: Transport, report: CheckReport, before: float | None, price: float
) -> None:
    p = report.probe
    if p is None:
        return
    if before is not None:
        try:
            p.charged = round(before - credits(transport), 6)
        except errors.SamAudioError:
            pass
    if p.charged == 0:
        report.notes.append(
            "the account's credits did not change after the probe (unlimited, "
            "or updated later): the price could not be confirmed."
        )
    elif p.charged is not None and abs(p.charged - price) > max(0.005, 0.1 * price):
        report.problems.append(
            f"the probe was charged ${p.charged:.4f}, but price_per_call is ${price:.3f}: "
            f"set SAMAUDIO_PRICE_PER_CALL={p.charged:.4f} (or price_per_call=) so estimates "
            "and max_cost are right."
        )
    if p.remaining_credits is None:
        report.notes.append(
            "the answer carries no x-remaining-credits header: usage shows "
            "the library's own count of spending only."
        )
    if p.via == "queue":
        report.queue = "served (the probe went through it)"
    elif report.transport == "auto":
        report.queue = (
            "not served: requests use the synchronous call (the probe's submit "
            "was refused with 404/405, not billed)"
        )
    timeout = report.limits.get("timeout")
    read = timeout[1] if isinstance(timeout, tuple) else timeout
    if isinstance(read, (int, float)) and p.latency > 0.5 * read:
        report.problems.append(
            f"one second of audio took {p.latency:.1f} s, over half the "
            f"read timeout ({read:g} s): raise timeout= or lower "
            "chunk_seconds."
        )


def check_parts(parts, *, probe: bool = False) -> CheckReport:
    """Check the key, the account, the endpoint and the queue; returns a ``CheckReport``.

    Nothing is spent unless ``probe=True``: then exactly one call is paid, on one second
    of generated audio, and the report says what the answer looked like, how long it
    took, the provider's credits header and what it cost. ``report.ok`` is False (and
    ``report.problems`` says what to do) when anything differs from what the library
    assumes. ``print(report)`` shows it all; it never contains the key.

    >>> from samaudio_data import Client
    >>> from samaudio_data.testing import LocalEndpoint
    >>> with LocalEndpoint(keys={"k": 2.0}) as ep, Client("k", endpoint=ep.url,
    ...                                               cache_dir=False) as c:
    ...     free, paid = c.check(), c.check(probe=True)
    >>> free.ok, free.credits, paid.ok, paid.probe.sample_rate, paid.probe.via
    (True, 2.0, True, 48000, 'queue')
    """
    opts = parts.options
    limits = {
        "requests_per_minute": opts.rate_limits.per_minute,
        "max_concurrency": opts.rate_limits.max_concurrency,
        "timeout": opts.timeout,
        "max_retries": opts.retries.max_retries,
        "price_per_call": opts.price_per_call,
        "chunk_seconds": opts.chunking.chunk_seconds,
        "cache_dir": str(opts.cache_dir) if opts.cache_dir else None,
    }
    send = None
    if probe:
        # about a second, not a whole number of the model's 1920-sample frames, so that any
        # padding of the answer shows
        tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(47500) / 48000)
        job = parts.prepare(tone.astype(np.float32), 48000, "speech", {})
        send = functools.partial(
            probe_call, parts.caller, parts.caller.exchange, job.pieces[0], job
        )
    return check(
        parts.http,
        parts.caller.exchange,
        limits=limits,
        price_per_call=opts.price_per_call,
        probe=send,
    )
