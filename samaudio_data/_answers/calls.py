"""One piece's answer: from the cache if a verified entry is there, else paid for once.

:class:`Caller` is what turns an upload into a validated
:class:`~samaudio_data._answers.jobs.Answer`:

1. the cache: an entry is verified (checksum, the key it answers) and decoded, and must
   cover the upload, before it is served; a damaged one is a miss (:mod:`.verify`);
2. a per-key lock, so concurrent askers of the same clip (threads or processes) pay once;
3. the request, repeated as the retry policy says: each attempt takes a concurrency slot and
   its turn in the shared pace, stops if another worker hit 401/403/406, and validates the
   answer (audio, complete, covering the input) before anything is cached or returned;
4. the accounting (:mod:`.accounting`): usage, the shared budget (reserved per attempt,
   refunded when nothing was billed), the 429 back-off shared with every sender. A
   synchronous call is billed when its 200 arrives; a queued request as soon as its submit
   is accepted, and refunded only when the queue reports it FAILED (which the provider does
   not bill). A queued answer that stays invalid after its retries (fetching again is free)
   is dropped from the journal: asking for that piece again submits it again, and pays
   again.

Example
-------
>>> import numpy as np
>>> from samaudio_data import Client
>>> from samaudio_data.testing import LocalEndpoint
>>> with LocalEndpoint() as ep, Client("local-key", endpoint=ep.url, cache_dir=False) as c:
...     res = c.separate(np.zeros(8000, np.float32), 8000, "speech")
>>> res.cost > 0, res.cached
(True, False)
"""

from __future__ import annotations

import base64
import contextlib
import logging
import random
import time

from .. import errors
from .._estimate import Counts
from .._models import Budget, Usage
from .._net.queue import QueueExchange
from .._net.responses import audio_bytes
from .._net.retry import RetryPolicy
from .._net.transport import Transport
from .._net.wire import departing
from .._state.limits import SharedLimits
from .._version import __version__
from . import accounting, verify
from .cache import ResultCache, request_key
from .jobs import Answer, Job, Piece

log = logging.getLogger("samaudio_data")

# Answers larger than this many bytes per second of input are refused unread: 192 kHz,
# 2 channels of float64 in base64 JSON is far beyond anything a faithful answer needs.
_ANSWER_BYTES_PER_SECOND = 192000 * 2 * 8 * 4 // 3
_ANSWER_BYTES_BASE = 1 << 20
# where to go without a key: everything works offline against the local endpoint
NO_KEY_HINT = (
    "No key yet? Try everything offline against the local endpoint: "
    "from samaudio_data.testing import LocalEndpoint; ep = LocalEndpoint().start(); "
    "client = Client('local-key', endpoint=ep.url) (or samaudio-data serve, or the "
    "CLI's --local)."
)
# a connection-level failure (DNS, refused, TLS) met this many times in a row by one request
# stops the run: every other request would meet it too
UNREACHABLE_ATTEMPTS = 3


class Caller:
    """Cache, limits, retries and accounting around a :class:`Transport`."""

    def __init__(
        self,
        transport: Transport,
        *,
        cache: ResultCache | None,
        limits: SharedLimits,
        policy: RetryPolicy,
        usage: Usage,
        price_per_call: float,
        identity: str,
        audio_encoding: str,
        upload_format: str,
        exchange: QueueExchange,
    ) -> None:
        self.transport = transport
        self.exchange = exchange  # how bodies are sent: the sync call or the queue

        self.cache = cache
        self.limits = limits
        self.policy = policy
        self.usage = usage
        self.price_per_call = price_per_call
        self.identity = identity
        self.audio_encoding = audio_encoding
        self.upload_format = upload_format

    # --- keys and the cache ----------------------------------------------------------------

    def key(self, piece: Piece, job: Job) -> str:
        """The cache key of one piece (never the API key)."""
        params = dict(job.params, upload_format=self.upload_format)
        return request_key(piece.upload.data, job.description, params, self.identity)

    def cached(self, piece: Piece, job: Job) -> Answer | None:
        """The verified cached answer of ``piece``, or None (a miss)."""
        if self.cache is None:
            return None
        return verify.cached_answer(self.cache, self.key(piece, job), piece)

    def count(self, job: Job) -> Counts:
        """What a run would do with a prepared job's pieces; nothing is sent.

        A piece is cached (its verified answer is on disk), pending (paid for on the queue
        and not collected yet, by this client or an interrupted run: collected for free),
        uncollectable (paid, but its answer cannot be followed: asking for it raises
        :class:`~samaudio_data.errors.UncollectableRequestError` until its journal entry
        expires), or a call to pay for.
        """
        total = Counts()
        for piece in job.pieces:
            if self.cached(piece, job) is not None:
                total += Counts(cached=1)
                continue
            ticket = self.exchange.pending(self.key(piece, job))
            if ticket is None:
                total += Counts(calls=1)
            elif ticket.unfollowable:
                journal = self.exchange.journal
                until = ticket.created + journal.retention if journal is not None else 0.0
                total += Counts(uncollectable=1, until=until)
            else:
                total += Counts(pending=1)
        return total

    # --- one piece -------------------------------------------------------------------------

    def answer(self, piece: Piece, job: Job, *, started: float, budget: Budget | None) -> Answer:
        """The answer for one piece: cached, else requested (once) and cached."""
        hit = self.cached(piece, job)
        if hit is None and self.cache is not None:
            with self.cache.lock(self.key(piece, job)):  # a concurrent asker waits, then hits
                hit = self.cached(piece, job)
                if hit is None:
                    ans, data = self.request(piece, job, started=started, budget=budget)
                    if self.cache.put(
                        self.key(piece, job),
                        data,
                        ans.fmt,
                        {
                            "cost": ans.cost,
                            "seconds": ans.seconds,
                            "description": self.transport.redact(job.description),
                            "params": job.params,
                            "created": time.time(),
                            "version": __version__,
                        },
                    ):
                        self.exchange.done(self.key(piece, job))  # cached: its request is spent
                    # (not cached: a queued request stays journalled, so that asking again
                    # collects it instead of paying for it again)
                    return ans
        elif hit is None:
            ans = self.request(piece, job, started=started, budget=budget)[0]
            self.exchange.done(self.key(piece, job))
            return ans
        self.usage.record(cached=1)
        return hit

    def body(self, piece: Piece, job: Job) -> dict:
        """The JSON body that asks for ``piece``."""
        b64 = base64.b64encode(piece.upload.data).decode("ascii")
        mime = "audio/flac" if self.upload_format == "flac" else "audio/wav"
        return {
            "audio": f"data:{mime};base64,{b64}" if self.audio_encoding == "data_uri" else b64,
            "description": job.description,
            **job.params,
        }

    @staticmethod
    def max_answer_bytes(piece: Piece) -> int:
        """The largest answer accepted for ``piece`` (larger ones are refused unread)."""
        return _ANSWER_BYTES_BASE + int(
            piece.upload.frames / piece.upload.sr * _ANSWER_BYTES_PER_SECOND
        )

    def request(self, piece: Piece, job: Job, *, started: float, budget: Budget | None):
        """Send one piece with retries; returns ``(Answer, audio bytes to cache)``."""
        if not self.transport.has_key:
            raise errors.AuthenticationError(
                "no API key: set SEGMIND_API_KEY or pass api_key= to Client. Nothing was sent.",
                hint=NO_KEY_HINT,
            )
        body, max_bytes, key = (
            self.body(piece, job),
            self.max_answer_bytes(piece),
            self.key(piece, job),
        )
        expired = False
        held = {"reserved": False}  # a budget reservation this request holds
        faults = attempts = 0
        rate_waited = spent = paid = 0.0
        while True:
            attempts += 1
            try:
                samples, sr, fmt, data, took, billed = self._attempt(
                    body,
                    piece,
                    key=key,
                    started=started,
                    budget=budget,
                    max_bytes=max_bytes,
                    held=held,
                )
                spent += took
                paid += billed
                self.usage.record(seconds=took)
                return Answer(
                    samples=samples, sr=sr, fmt=fmt, cost=paid, seconds=spent, attempts=attempts
                ), data
            except errors.QueueResultExpiredError as exc:
                if expired:  # a fresh request expired too: something is wrong, stop
                    self.usage.record(failed=1)
                    raise
                expired = True  # its result is gone: it has to be sent (and paid) again
                log.warning("%s", exc)
            except errors.Requeue:  # a 429 came after its turn: nothing was sent, it waits again
                attempts -= 1
            except errors.BudgetExceededError:
                raise  # refused before sending: not a failed call
            except errors.RateLimitError as exc:
                wait = self.policy.rate_limit_wait(exc)
                rate_waited += wait
                if rate_waited > self.policy.rate_limit_patience:
                    self.usage.record(failed=1)
                    raise
            except errors.SamAudioError as exc:
                spent += held.pop("took", 0.0)  # what the failed attempt took and cost
                paid += held.pop("billed", 0.0)
                faults += 1
                unreachable = getattr(exc, "unreachable", None)
                if unreachable and faults >= UNREACHABLE_ATTEMPTS:
                    self.usage.record(failed=1)
                    raise self._unreachable(unreachable, faults) from exc
                delay = self.policy.fault_delay(exc, faults)
                queued = (
                    isinstance(exc, errors.ResponseDecodeError)
                    and not isinstance(exc, errors.UncollectableRequestError)
                    and self.exchange.pending(key) is not None
                )
                if delay is None and queued and faults <= self.policy.max_retries:
                    # a queued answer is fetched again for free: retried like a fault
                    delay = self.policy.fault_delay(errors.IncompleteResponseError(""), faults)
                if delay is None:
                    self.usage.record(failed=1)
                    if queued:  # paid, invalid after its retries: not fetched for ever
                        self.exchange.done(key)
                        exc.message += (
                            " The request was paid for; its journal entry is "
                            "removed, so asking for this piece again submits it "
                            "again (and pays again)."
                        )
                        exc.args = (exc.message,) + exc.args[1:]
                    raise
                log.info(
                    "%s; retry %d of %d in %.1f s", exc, faults, self.policy.max_retries, delay
                )
                self.usage.record(retries=1)
                time.sleep(delay)

    def _attempt(
        self,
        body: dict,
        piece: Piece,
        *,
        key: str,
        started: float,
        budget: Budget | None,
        max_bytes: int,
        held: dict,
    ):
        """One attempt: slot, pace, send (or collect a queued request already paid for),
        validate. Raises typed errors."""
        with self.limits.slot():
            # a queued request already paid for is collected: no new budget or request
            # count (it still waits its turn, so a 429 back-off holds for polls too)
            resuming = self.exchange.pending(key) is not None
            inherited = resuming and self.exchange.inherited(key)  # an earlier run paid it
            try:
                self.limits.wait_turn(started)
            except errors.Halted as stop:
                raise self._stopped(stop.halt) from None
            if budget is not None and not resuming:
                self._reserve(budget)
                held["reserved"] = True
            t0 = time.monotonic()
            billed = 0.0
            box = [0.0]  # what this attempt was billed, as soon as it is

            def accepted(headers: dict) -> None:  # a queued submit is billed when accepted
                self.note_headers(headers)
                box[0] = self.price_per_call
                held["submitted"] = True
                self.usage.record(billed=1, cost=self.price_per_call)

            try:
                with departing(self._leaving(started, count=not resuming)):
                    content, headers, via = self.exchange.send(
                        body, cache_key=key, max_bytes=max_bytes, on_submit=accepted
                    )
                billed = box[0]
                if via == "sync":  # a sync 200 is billed, whatever it holds
                    billed = self.price_per_call
                    self.usage.record(billed=1, cost=billed)
                elif inherited:  # collected, paid by the run that was interrupted
                    self.usage.record(cached=1)
                self.note_headers(headers)
                data, fmt = audio_bytes(content, fetch=lambda url: self._download(url, max_bytes))
                samples, sr = verify.validate(data, fmt, piece)
            except errors.QueueJobFailedError:  # FAILED is not billed: refunded
                if held.pop("submitted", False):
                    self.usage.record(billed=-1, cost=-self.price_per_call)
                self._refund(budget, 0.0, key, held)
                raise
            except errors.Halted as stop:  # stopped at the gate: nothing was sent
                billed = box[0]
                self._refund(budget, billed, key, held)
                raise self._stopped(stop.halt) from None
            except errors.Requeue:  # a 429 came after this one's turn: nothing was sent
                self._refund(budget, box[0], key, held)
                raise
            except errors.RateLimitError as exc:
                self._refund(budget, box[0], key, held)
                wait = self.policy.rate_limit_wait(exc)
                self.limits.record_rate_limited(wait + random.uniform(0, 0.05 * max(wait, 1.0)))
                if exc.response is not None:  # (after: a fresh 429 must count as one)
                    self.note_headers(exc.response.headers)
                self.usage.record(rate_limited=1)
                log.info("rate limited (429); every sender waits %.1f s", wait)
                raise
            except errors.FatalAPIError as exc:
                self._refund(budget, box[0], key, held)
                # tell every sender before giving up the slot, so none slips in meanwhile
                self.limits.halt(exc.status_code, type(exc).__name__, exc.message)
                raise
            except errors.SamAudioError as exc:
                billed = max(billed, box[0])
                self._refund(budget, billed, key, held)
                held["took"], held["billed"] = time.monotonic() - t0, billed
                # an answer may echo the key back: it never reaches a message or a log
                exc.message = self.transport.redact(exc.message)
                exc.args = (exc.message,) + exc.args[1:]
                raise
            finally:
                self.usage.mark("done")
            took = time.monotonic() - t0
            self.limits.record_success(took)
        return samples, sr, fmt, data, took, billed

    # --- helpers -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _leaving(self, started: float, *, count: bool):
        """The pace's gate, passed as the request's first bytes are written (see
        :mod:`._wire`); a request is counted once it has passed it."""
        with self.limits.gate(started):
            if count:
                self.usage.record(requests=1)
                self.usage.mark("sent")
            yield

    def _unreachable(self, reason: str, attempts: int) -> errors.EndpointUnreachableError:
        return errors.EndpointUnreachableError(
            f"cannot reach {self.transport.redact(self.transport.endpoint)}: {reason} "
            f"({attempts} attempts in a row). Every request would meet it, so the run stops "
            "here; nothing was billed for these attempts.",
            hint="Check the network and the endpoint URL (SAMAUDIO_ENDPOINT or endpoint=) "
            "with `samaudio-data check`, then run again: answers already paid for are "
            "cached.",
        )

    @staticmethod
    def _stopped(halt: dict) -> errors.SamAudioError:
        err = errors.error_for_status(halt["status"] or 0, halt["message"])
        return type(err)(
            f"stopped: another request got {halt['kind']} ({halt['message']}); "
            "nothing more was sent.",
            status_code=halt["status"],
            hint=err.hint,
        )

    def _reserve(self, budget: Budget) -> None:
        accounting.reserve(budget, self.price_per_call, self.usage)

    def _refund(self, budget: Budget | None, billed: float, key: str, held: dict) -> None:
        accounting.refund(budget, self.price_per_call, billed, held, self.exchange, key)

    def note_headers(self, headers: dict) -> None:
        """What a paid answer's (or a 429's) headers announce: see :mod:`.accounting`."""
        accounting.note_headers(headers, limits=self.limits, usage=self.usage)

    def _download(self, url: str, max_bytes: int) -> bytes:
        # the key goes only to the endpoint's origin, never to a result URL
        _, data, _ = self.transport.request("GET", url, with_key=False, max_bytes=max_bytes)
        return data
