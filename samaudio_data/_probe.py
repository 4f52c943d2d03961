"""The one paid probe of :func:`samaudio_data.Client.check`: send one second, describe the answer.

:func:`probe_call` sends one piece once (no retry, no cache, no journal), validates what came
back and returns a :class:`ProbeResult`: how it travelled (queue or synchronous call), its
carrier (raw bytes, base64 in JSON, a data URI, a URL), format, rate, channels, length and
padding, the latency, the provider's ``x-remaining-credits`` and the configured price.
:mod:`._account` turns it into lines of the :class:`~samaudio_data._account.CheckReport`.

Example
-------
>>> r = ProbeResult(via="queue", carrier="raw audio bytes in the queue's result",
...                 content_type=None, format="wav", sample_rate=48000, channels=1,
...                 frames=48000, input_frames=47500, input_rate=48000, padding=500)
>>> r.lines()[2]
'  length vs input: +500 samples (to a whole number of 1920-sample frames)'
"""

from __future__ import annotations

import time
from dataclasses import dataclass

_FRAME = 1920  # the model's latent frame at 48 kHz: answers may be padded to a multiple


@dataclass
class ProbeResult:
    """What one paid call on one second of generated audio gave back."""

    via: str  # "sync" or "queue"
    carrier: str  # raw audio bytes, JSON base64, data URI, URL
    content_type: str | None
    format: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    frames: int | None = None
    input_frames: int = 0
    input_rate: int = 0
    padding: int | None = None  # samples beyond the input's length, at the answer's rate
    latency: float = 0.0
    remaining_credits: str | None = None
    price_per_call: float = 0.0
    charged: float | None = None  # credits before minus after, when both were read

    def lines(self) -> list[str]:
        """The probe's part of the report, one fact a line."""
        out = [
            f"probe: 1 call via {self.via} in {self.latency:.1f} s; answer: {self.carrier}"
            + (f" ({self.content_type})" if self.content_type else "")
        ]
        if self.format and self.frames is not None and self.sample_rate:
            secs = self.frames / self.sample_rate
            out.append(
                f"  audio: {self.format}, {self.sample_rate} Hz, {self.channels} "
                f"channel(s), {self.frames} samples ({secs:.3f} s) for "
                f"{self.input_frames} samples at {self.input_rate} Hz"
            )
            pad = f"{self.padding:+d} samples"
            if self.padding and self.sample_rate == 48000 and self.frames % _FRAME == 0:
                pad += f" (to a whole number of {_FRAME}-sample frames)"
            out.append(f"  length vs input: {pad}")
        header = self.remaining_credits if self.remaining_credits is not None else "not sent"
        out.append(f"  x-remaining-credits: {header}")
        cost = f"  cost: ${self.price_per_call:.3f} per call as configured"
        if self.charged is not None:
            cost += f"; the account was charged ${self.charged:.4f}"
        out.append(cost)
        return out


def probe_call(caller, exchange, piece, job) -> ProbeResult:
    """Send ``piece`` once (no retry, no cache, no journal) and describe the answer.

    A call that came back but is not usable audio raises the typed error of validation.
    """
    from ._answers.verify import validate
    from ._net.responses import audio_bytes

    transport = caller.transport
    max_bytes = caller.max_answer_bytes(piece)
    downloads = []

    def download(url: str) -> bytes:
        status, data, headers = transport.request("GET", url, with_key=False, max_bytes=max_bytes)
        downloads.append(headers.get("content-type"))
        return data

    t0 = time.monotonic()
    content, headers, via = exchange.send(
        caller.body(piece, job), cache_key=None, max_bytes=max_bytes, on_submit=caller.note_headers
    )
    latency = time.monotonic() - t0
    caller.usage.record(requests=1, billed=1, cost=caller.price_per_call, seconds=latency)
    caller.note_headers(headers)
    data, fmt = audio_bytes(content, fetch=download)
    result = ProbeResult(
        via=via,
        carrier=_carrier(content, via, bool(downloads)),
        content_type=(
            downloads[0] if downloads else headers.get("content-type") if via == "sync" else None
        ),
        input_frames=piece.upload.frames,
        input_rate=piece.upload.sr,
        latency=latency,
        remaining_credits=headers.get("x-remaining-credits"),
        price_per_call=caller.price_per_call,
    )
    samples, sr = validate(data, fmt, piece)
    result.format, result.sample_rate = fmt, sr
    result.channels, result.frames = samples.shape[0], samples.shape[-1]
    result.padding = result.frames - round(piece.upload.frames * sr / piece.upload.sr)
    return result


def _carrier(content: bytes, via: str, downloaded: bool) -> str:
    from .audio import sniff_format

    where = "the queue's result" if via == "queue" else "the answer"
    if sniff_format(content):
        return f"raw audio bytes in {where}"
    if downloaded:
        return f"a URL in {where} (downloaded without the key)"
    text = content.lstrip()[:64]
    if b"data:" in text:
        return f"a data: URI in {where}"
    return f"base64 audio in JSON in {where}"
