"""What each route of the local endpoint answers: the provider's behaviour, without HTTP.

:class:`Service` ties the parts together (settings, accounts, faults, files, queued jobs,
stats); every public method takes what a request carries and returns a
:class:`~samaudio_data.testing._protocol.Reply`. The HTTP layer (``_server``) only routes.

Order of checks on a model POST (v1 call or v2 submit), as on a gateway in front of a model:
an injected fault, then the key (401/403), then the rate limit (429: a slot is taken by every
request that gets past it, even if it is then refused with 400 or 406), then the body (400;
500 for an internal failure), then the credits (406), then the model. Polls and fetches are
never rate limited nor billed.

Example
-------
>>> svc = Service(Options().validate(), Accounts({"k": 1.0}), base_url=lambda: "http://h:1")
>>> svc.credits("k").body
b'{"credits": 1.0, "free-credits": 0.0}'
>>> svc.call("k", b"{}").status, svc.call("nope", b"{}").status
(400, 401)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from ._accounts import Accounts
from ._clock import Clock
from ._faults import Fault, FaultQueue, fault_reply
from ._files import FileStore
from ._model import encode_answer, separate, wants_failure
from ._options import Options
from ._protocol import (
    DROP,
    FILES_PREFIX,
    MODEL_NAME,
    POLL_PREFIX,
    REQUESTS_PREFIX,
    BadRequest,
    Call,
    Reply,
    audio_reply,
    json_doc,
    json_reply,
    parse_json,
    read_call,
)
from ._queue import JobQueue
from ._scenes import Scenes
from ._stats import Stats

_Admitted = Reply | Call


class Service:
    """The endpoint's behaviour; see the module docstring."""

    def __init__(
        self,
        options: Options,
        accounts: Accounts,
        *,
        base_url: Callable[[], str],
        faults: FaultQueue | None = None,
        files: FileStore | None = None,
        jobs: JobQueue | None = None,
        stats: Stats | None = None,
        stopping: threading.Event | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.options = options
        self.accounts = accounts
        self.base_url = base_url
        self.clock = clock or Clock()
        self.faults = faults or FaultQueue()
        self.files = files or FileStore()
        self.jobs = jobs or JobQueue(self.clock)
        self.stats = stats or Stats()
        self.stopping = stopping or threading.Event()
        self.scenes = Scenes()

    # --- model POSTs ------------------------------------------------------------------

    def call(self, key: str | None, body: bytes, arrived: float | None = None) -> Reply:
        """``POST /v1/sam-audio-large``: the isolated audio, or an error. ``arrived``
        (``self.clock()`` when its headers arrived) is when the rate limit counts it."""
        return self._counted("call", self._call, key, body, arrived)

    def submit(self, key: str | None, body: bytes, arrived: float | None = None) -> Reply:
        """``POST /v2/sam-audio-large``: a queued job's id and URLs, or an error."""
        return self._counted("submit", self._submit, key, body, arrived)

    def _counted(self, step: str, handler, key, body, arrived) -> Reply:
        self.stats.enter()
        reply = None
        try:
            reply = handler(key, body, arrived)
            if (
                self.options.send_ratelimit_headers
                and key
                and reply.mode != "drop"
                and self.accounts.knows(key)
            ):
                reply.headers.update(self.accounts.limiter.headers(key, self.options.rate_limit))
        finally:
            # counted before writing, so a client that has its answer sees consistent stats
            self.stats.leave(step, None if reply is None or reply.mode == "drop" else reply.status)
        return reply

    def _call(self, key, body: bytes, arrived: float | None) -> Reply:
        admitted = self._admit("call", key, body, self.faults.take("call"), arrived)
        if isinstance(admitted, Reply):
            return admitted
        rendered = self._render(admitted)
        if isinstance(rendered, Reply):
            return rendered
        data, clipped = rendered
        left = self.accounts.charge(key, self.options.price_per_call)
        if isinstance(left, Reply):
            return left
        if self.options.latency and self.clock.wait(self.options.latency, self.stopping):
            self.accounts.refund(key, self.options.price_per_call)  # abandoned: not paid
            return DROP
        reply = audio_reply(data, admitted.fmt, self.options.response_format, self._add_file)
        if clipped:
            reply.headers["x-clipped-samples"] = str(clipped)
        self._finish(reply, key, left)
        return reply

    def _submit(self, key, body: bytes, arrived: float | None) -> Reply:
        fault = self.faults.take("submit")
        admitted = self._admit("submit", key, body, fault, arrived)
        if isinstance(admitted, Reply):
            return admitted
        failing = (fault is not None and fault.kind == "fail") or wants_failure(
            admitted.description
        )
        if failing:
            data, left = None, None
            error = (
                "the model failed on this input (injected fault)"
                if fault is not None
                else "the model failed on this input (its description says 'fail')."
            )
        else:
            error = None
            rendered = self._render(admitted)
            if isinstance(rendered, Reply):
                return rendered
            data = rendered[0]
            left = self.accounts.charge(key, self.options.price_per_call)
            if isinstance(left, Reply):
                return left
        job = self.jobs.submit(
            key,
            data=data,
            fmt=admitted.fmt,
            error=error,
            queue_delay=self.options.queue_delay,
            latency=self.options.latency,
            max_jobs=self.options.queue_max_jobs,
        )
        origin = self.options.queue_url_origin or self.base_url()
        reply = json_doc(
            200,
            {
                "request_id": job.id,
                "status": job.state(self.jobs.clock()),
                "status_url": f"{origin}{REQUESTS_PREFIX}{job.id}/status",
                "response_url": f"{origin}{REQUESTS_PREFIX}{job.id}",
                "poll_url": f"{origin}{POLL_PREFIX}{job.id}",
            },
        )
        if not failing:
            self._finish(reply, key, left)
        return reply

    def _admit(
        self, step: str, key, body: bytes, fault: Fault | None, arrived: float | None
    ) -> _Admitted:
        """Count the request, serve its fault, check key, rate and body: the Call or a Reply."""
        payload = parse_json(body)
        self.stats.request(step, len(body), payload)
        if fault is not None and fault.kind not in ("slow", "fail"):
            return fault_reply(fault, step)
        if (
            fault is not None
            and fault.kind == "slow"
            and self.clock.wait(fault.delay, self.stopping)
        ):
            return DROP
        refusal = self.accounts.identify(key)
        if refusal is not None:
            return refusal
        self.stats.key_request(key)
        refusal = self.accounts.take_slot(
            key, self.options.rate_limit, self.options.send_retry_after, now=arrived
        )
        self.stats.arrival(arrived, refusal is not None)
        if refusal is not None:
            return refusal
        try:
            call = read_call(
                payload,
                own_file=self._own_file,
                accept_data_uri=self.options.accept_data_uri,
                max_audio_seconds=self.options.max_audio_seconds,
            )
        except BadRequest as exc:
            return json_reply(400, str(exc))
        except Exception as exc:  # an internal failure is a 500, never billed
            return json_reply(
                500, f"internal error in the local endpoint: {type(exc).__name__}: {exc}"
            )
        self.stats.upload(call)
        if step == "call" and wants_failure(call.description):
            return json_reply(
                500,
                "the model failed on this input (its description says 'fail'); nothing was billed.",
            )
        return call

    def _render(self, call: Call) -> tuple[bytes, int] | Reply:
        """The encoded answer and its clipped count (or a 500 if the fake model breaks)."""
        o = self.options
        try:
            y, sr, description = call.y, call.sr, call.description
            scene = self.scenes.find(call.y, call.sr)
            if scene is not None:  # a scripted answer, through the model's own resampling
                y = scene.answer(call.reranking_candidates) * scene.level(call.y)
                sr, description = scene.sr, ""
            out = separate(
                y,
                sr,
                description,
                pad_to_frame=o.pad_to_frame,
                output_sample_rate=o.output_sample_rate,
                output_channels=o.output_channels,
            )
            data, clipped = encode_answer(out, o.output_sample_rate, call.fmt, o.output_subtype)
        except Exception as exc:
            return json_reply(
                500, f"internal error in the local endpoint: {type(exc).__name__}: {exc}"
            )
        if clipped:
            self.stats.clipped(clipped)
        return data, clipped

    def _finish(self, reply: Reply, key: str, left: float | None) -> None:
        """Billing headers and counts of an answer that is paid for."""
        if left is not None:
            reply.headers["x-remaining-credits"] = repr(round(left, 6))
        self.stats.billed(key)

    # --- queue GETs ---------------------------------------------------------------------

    def status(self, key: str | None, job_id: str) -> Reply:
        """``GET /v2/requests/{id}/status``: ``{"status": ...}`` (FAILED as 422)."""
        return self._job_get("status", key, job_id)

    def result(self, key: str | None, job_id: str) -> Reply:
        """``GET /v2/requests/{id}``: the result once COMPLETED (202 before, 422 if FAILED)."""
        return self._job_get("result", key, job_id)

    def _job_get(self, step: str, key, job_id: str) -> Reply:
        self.stats.request(step, 0)
        reply = self._job_reply(step, key, job_id)
        self.stats.answered(step, None if reply.mode == "drop" else reply.status)
        return reply

    def _job_reply(self, step: str, key, job_id: str) -> Reply:
        fault = self.faults.take(step)
        if fault is not None and fault.kind != "slow":
            return fault_reply(fault, step)
        if fault is not None and self.clock.wait(fault.delay, self.stopping):
            return DROP
        refusal = self.accounts.identify(key)
        if refusal is not None:
            return refusal
        retention = self.options.queue_retention
        job, expired = self.jobs.find(job_id, key, retention=retention)
        if job is None:
            if expired:
                return json_reply(
                    404,
                    f"request {job_id} has expired: results are kept "
                    f"{retention:g} s after they finish. Submit it again.",
                )
            return json_reply(404, f"request {job_id} not found for this API key.")
        if step == "status":
            code, doc = self.jobs.status(job)
        else:
            code, doc = self.jobs.result(
                job, output=self.options.queue_output, file_url=self._file_url
            )
        if doc.get("status") == "COMPLETED":  # how late a client saw it done, fetched it
            for event in ("seen", "collected") if step == "result" else ("seen",):
                lag = self.jobs.first(job, event)
                if lag is not None:
                    self.stats.lag(event, lag)
        return json_doc(code, doc)

    def queue_off(self, path: str) -> Reply:
        """What a ``/v2`` route answers when the model is not served on the queue."""
        status = self.options.queue_off_status
        message = (
            f"{MODEL_NAME} is not available on the asynchronous queue ({path}); "
            f"use POST /v1/{MODEL_NAME}."
        )
        return json_reply(status, message, {"Allow": ""} if status == 405 else None)

    # --- other routes -------------------------------------------------------------------

    def credits(self, key: str | None) -> Reply:
        """``GET /v1/get-user-credits``."""
        return self.accounts.credits_reply(key)

    def file(self, name: str) -> Reply:
        """``GET /files/<name>``: a json-url answer, an added file or a queued output."""
        entry = self.files.get(name) or self.jobs.output_file(
            name, retention=self.options.queue_retention
        )
        if entry is None:
            return json_reply(
                404,
                f"file {name!r} not found (only the last "
                f"{self.files.max_files} answers and unexpired queued "
                "results are kept).",
            )
        return Reply(200, entry[0], entry[1])

    def too_large(self, step: str | None, size: int) -> Reply:
        """The 413 for a body over ``max_body_bytes``; ``step``: "call"/"submit" or None."""
        limit = self.options.max_body_bytes
        reply = json_reply(
            413,
            (
                f"Request body is {size} bytes; this endpoint accepts at most "
                f"{limit} bytes. Send shorter audio (split it into chunks)."
            ),
        )
        if step is not None:
            self.stats.request(step, size)
            self.stats.answered(step, 413)
        return reply

    def add_file(self, data: bytes, ext: str = "wav") -> str:
        """Keep ``data``; return its absolute URL on this server."""
        return self._add_file(data, ext)

    def _add_file(self, data: bytes, ext: str) -> str:
        return self._file_url(self.files.add(data, ext))

    def _file_url(self, name: str) -> str:
        return f"{self.base_url()}{FILES_PREFIX}{name}"

    def _own_file(self, url: str) -> bytes:
        parts, own = urlsplit(url), urlsplit(self.base_url())
        if (
            parts.scheme != own.scheme
            or parts.port != own.port
            or parts.hostname not in {"127.0.0.1", "localhost", own.hostname}
            or not parts.path.startswith(FILES_PREFIX)
        ):
            raise BadRequest(
                "remote URLs not supported by the local endpoint: send the "
                "audio as base64, or a URL of this server's /files/."
            )
        entry = self.file(parts.path[len(FILES_PREFIX) :])
        if entry.status != 200:
            raise BadRequest(
                f"'audio' URL {parts.path} is not on this server (only the last "
                f"{self.files.max_files} files are kept)."
            )
        return entry.body
