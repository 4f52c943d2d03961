"""The asynchronous queue's jobs: states over time, status and result documents, retention.

A job is rendered when it is submitted (validation needs the audio decoded anyway), then
its state follows the clock: ``QUEUED`` for ``queue_delay`` seconds, ``PROCESSING`` for
``latency`` seconds, then ``COMPLETED`` (or ``FAILED``). Its result is kept ``retention``
seconds after it finished; after that its id answers 404 ("expired"), as the provider
deletes results after about an hour. To bound memory, at most ``max_jobs`` jobs are kept:
past that, the oldest finished job is dropped early (it answers "expired" too).

Example
-------
>>> jobs = JobQueue(clock=lambda: 100.0)
>>> job = jobs.submit("key", data=b"RIFF", fmt="wav", queue_delay=1.0, latency=2.0)
>>> jobs.status(job)[1]["status"]
'QUEUED'
>>> jobs.clock = lambda: 102.5
>>> jobs.status(job)[1]["status"]
'PROCESSING'
>>> jobs.clock = lambda: 103.0
>>> code, doc = jobs.result(job, output="base64")
>>> code, doc["status"], doc["output"]
(200, 'COMPLETED', 'UklGRg==')
>>> jobs.clock = lambda: 4000.0
>>> jobs.find(job.id, "key", retention=3600)
(None, True)
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ._protocol import MIME, encode_output

QUEUE_OUTPUTS = ("url", "base64", "data-uri")
"""How ``output`` carries the audio in a COMPLETED result."""
MAX_JOBS = 512
"""Jobs kept in memory at most (the oldest finished ones go first, answering "expired")."""
MAX_TOMBSTONES = 100_000


@dataclass
class Job:
    """One submitted request. ``data`` is the encoded answer (None when it will fail)."""

    id: str
    key: str
    created: float
    started: float
    finished: float
    data: bytes | None
    fmt: str
    error: str | None
    seen: float | None = None  # when a poll first found it COMPLETED (clock time)
    collected: float | None = None  # when its result was first fetched (clock time)

    def state(self, now: float) -> str:
        """QUEUED, PROCESSING, COMPLETED or FAILED at time ``now``."""
        if now < self.started:
            return "QUEUED"
        if now < self.finished:
            return "PROCESSING"
        return "FAILED" if self.error is not None else "COMPLETED"

    @property
    def file_name(self) -> str:
        """The name its output has under ``/files/``."""
        return f"{self.id}.{self.fmt}"


class JobQueue:
    """Thread-safe store of jobs by id; the state of each follows ``clock``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._expired: collections.OrderedDict[str, None] = collections.OrderedDict()

    def submit(
        self,
        key: str,
        *,
        data: bytes | None,
        fmt: str,
        queue_delay: float,
        latency: float,
        error: str | None = None,
        max_jobs: int = MAX_JOBS,
    ) -> Job:
        """Create a job for ``key`` that completes with ``data`` (or fails with ``error``).

        Past ``max_jobs`` kept jobs, the oldest finished one is dropped (as if expired).
        """
        now = self.clock()
        job = Job(
            str(uuid.uuid4()),
            key,
            now,
            now + queue_delay,
            now + queue_delay + latency,
            data if error is None else None,
            fmt,
            error,
        )
        with self._lock:
            self._jobs[job.id] = job
            if len(self._jobs) > max_jobs:
                done = [j for j in self._jobs.values() if j.finished <= now]
                oldest = min(done or self._jobs.values(), key=lambda j: j.finished)
                del self._jobs[oldest.id]
                self._expired[oldest.id] = None
        return job

    def find(self, job_id: str, key: str, *, retention: float) -> tuple[Job | None, bool]:
        """``(job, False)``; ``(None, True)`` when it expired; ``(None, False)`` if unknown.

        A job belongs to the key that submitted it: another key gets "unknown", so that ids
        cannot be probed across accounts.
        """
        self.purge(retention)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.key != key:
                return None, job is None and job_id in self._expired
            return job, False

    def purge(self, retention: float) -> None:
        """Forget results older than ``retention`` seconds after they finished."""
        now = self.clock()
        with self._lock:
            for job_id in [j.id for j in self._jobs.values() if now > j.finished + retention]:
                del self._jobs[job_id]
                self._expired[job_id] = None
            while len(self._expired) > MAX_TOMBSTONES:
                self._expired.popitem(last=False)

    def status(self, job: Job) -> tuple[int, dict]:
        """HTTP status and body of ``GET /v2/requests/{id}/status`` (FAILED is a 422)."""
        state = job.state(self.clock())
        doc: dict[str, object] = {"request_id": job.id, "status": state}
        if state == "FAILED":
            doc.update(error=job.error, metrics=self._metrics(job))
            return 422, doc
        return 200, doc

    def result(
        self, job: Job, *, output: str, file_url: Callable[[str], str] | None = None
    ) -> tuple[int, dict]:
        """HTTP status and body of ``GET /v2/requests/{id}``.

        COMPLETED: 200 with ``status``, ``error`` (None), ``metrics`` and ``output``;
        FAILED: 422 with ``error``; not finished yet: 202 with the current ``status`` and no
        ``output``.
        """
        state = job.state(self.clock())
        if state in ("QUEUED", "PROCESSING"):
            return 202, {"request_id": job.id, "status": state}
        if state == "FAILED":
            return self.status(job)
        assert job.data is not None  # a COMPLETED job holds its answer
        if output == "url":
            if file_url is None:
                raise ValueError("output='url' needs file_url: the URL of a file name.")
            value = file_url(job.file_name)
        else:
            value = encode_output(job.data, job.fmt, output)
        return 200, {
            "request_id": job.id,
            "status": "COMPLETED",
            "error": None,
            "metrics": self._metrics(job),
            "output": value,
        }

    def first(self, job: Job, event: str) -> float | None:
        """Seconds from ``job``'s completion to now if this is the first time of ``event``
        (``"seen"``: a status or result answered COMPLETED; ``"collected"``: its result was
        fetched); None otherwise."""
        now = self.clock()
        with self._lock:
            if getattr(job, event) is not None or now < job.finished or job.error is not None:
                return None
            setattr(job, event, now)
        return now - job.finished

    def output_file(self, name: str, *, retention: float) -> tuple[bytes, str] | None:
        """``(bytes, mime)`` of a completed job's output named ``<id>.<ext>``, or None."""
        self.purge(retention)
        job_id, _, ext = name.partition(".")
        with self._lock:
            job = self._jobs.get(job_id)
        if (
            job is None
            or job.data is None
            or job.fmt != ext
            or job.state(self.clock()) != "COMPLETED"
        ):
            return None
        return job.data, MIME[job.fmt]

    def counts(self) -> dict[str, int]:
        """{state: number of kept jobs in it}."""
        now = self.clock()
        with self._lock:
            return dict(collections.Counter(j.state(now) for j in self._jobs.values()))

    @staticmethod
    def _metrics(job: Job) -> dict:
        return {
            "queue_time": round(job.started - job.created, 6),
            "inference_time": round(job.finished - job.started, 6),
        }
