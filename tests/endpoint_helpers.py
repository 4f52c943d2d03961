"""Helpers for the local endpoint's tests: signals, request bodies, and calls with `requests`."""

from __future__ import annotations

import base64
import time

import requests

from samaudio_data.audio import decode_audio, encode_wav

KEY = "test-key"
TOL = 2 / 32768  # two 16-bit steps
SR = 48000


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def body_for(y, sr=SR, description="a man speaking", **extra):
    return {"audio": b64(encode_wav(y, sr)), "description": description, **extra}


def post(ep, body, key=KEY, timeout=10, url=None):
    headers = {} if key is None else {"x-api-key": key}
    url = url or ep.url
    if isinstance(body, (bytes, str)):
        return requests.post(url, data=body, headers=headers, timeout=timeout)
    return requests.post(url, json=body, headers=headers, timeout=timeout)


def get(url, key=KEY, timeout=10):
    return requests.get(url, headers={} if key is None else {"x-api-key": key}, timeout=timeout)


def answer(resp):
    assert resp.status_code == 200, resp.text[:300]
    y, sr = decode_audio(resp.content)
    return y, sr


def wait_until_done(status_url, key=KEY, deadline=10.0, interval=0.02):
    """Poll a status URL until COMPLETED or FAILED; return (states seen in order, last reply)."""
    states, end = [], time.monotonic() + deadline
    while True:
        r = get(status_url, key)
        state = r.json()["status"]
        if not states or states[-1] != state:
            states.append(state)
        if state in ("COMPLETED", "FAILED"):
            return states, r
        assert time.monotonic() < end, f"job still {state} after {deadline} s"
        time.sleep(interval)


def wait_for(condition, what, deadline=30.0, interval=0.01):
    """Poll ``condition()`` until it is true (a long deadline: a loaded machine is slow, not
    wrong); fail naming ``what`` if it never is. Returns the true value."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < end, f"waited {deadline} s for {what}"
        time.sleep(interval)
