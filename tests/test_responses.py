"""Finding the audio in a 200 body, and reading Retry-After, without a server."""

import base64
import email.utils
import json
import time

import numpy as np
import pytest

from samaudio_data._net.responses import audio_bytes
from samaudio_data._net.retry import parse_retry_after as _retry_after
from samaudio_data.audio import encode_mp3, encode_wav
from samaudio_data.errors import ResponseDecodeError

WAV = encode_wav(np.zeros(100), 16000)


@pytest.mark.parametrize(
    "body",
    [
        WAV,
        json.dumps({"audio": base64.b64encode(WAV).decode()}).encode(),
        json.dumps(
            {
                "status": "ok",
                "output": {
                    "audio_base64": "data:audio/wav;base64," + base64.b64encode(WAV).decode()
                },
            }
        ).encode(),
        json.dumps({"result": [{"id": "1", "data": base64.encodebytes(WAV).decode()}]}).encode(),
    ],
)
def test_audio_is_found_in_every_shape(body):
    assert audio_bytes(body, fetch=None) == (WAV, "wav")


def test_urls_are_followed_with_the_given_fetch():
    seen = []
    mp3 = encode_mp3(np.zeros(4800), 48000)
    body = json.dumps({"audio_url": "https://cdn.example/x.mp3"}).encode()
    assert audio_bytes(body, fetch=lambda u: seen.append(u) or mp3) == (mp3, "mp3")
    assert seen == ["https://cdn.example/x.mp3"]
    with pytest.raises(ResponseDecodeError, match="URL in the answer gave"):
        audio_bytes(body, fetch=lambda u: b"<html>expired</html>")


@pytest.mark.parametrize(
    "body, words",
    [
        (b"<html><body>Bad gateway</body></html>", "neither audio nor JSON"),
        (json.dumps({"error": "model is loading"}).encode(), "an error: 'model is loading'"),
        (json.dumps({"audio": "not base64 at all!"}).encode(), "JSON without audio"),
        (
            json.dumps({"audio": base64.b64encode(b"just some text, not audio").decode()}).encode(),
            "JSON without audio",
        ),
    ],
)
def test_bodies_without_audio_say_what_came(body, words):
    with pytest.raises(ResponseDecodeError, match=words):
        audio_bytes(body, fetch=None)


def test_retry_after_seconds_and_http_dates():
    assert _retry_after("12") == 12.0
    assert _retry_after("1.5") == 1.5
    assert _retry_after(None) is None and _retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= _retry_after(later) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert _retry_after(past) == 0.0
