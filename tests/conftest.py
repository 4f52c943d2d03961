"""Shared fixtures: a real local endpoint on 127.0.0.1 and clients pointed at it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from samaudio_data import Client, errors
from samaudio_data.testing import LocalEndpoint

# a key that looks real, so that a leak anywhere is easy to find
KEY = "sk-test-9f8e7d6c5b4a-SECRET"


def hostile_client(server, tmp_path, **kw):
    """A client of a hostile server (tests/hostile.py) playing the provider: its cache in
    ``tmp_path/cache``, fast back-off, one retry, the synchronous call unless ``transport=``
    says otherwise."""
    defaults = dict(
        cache_dir=tmp_path / "cache",
        backoff_base=0.01,
        progress=False,
        max_retries=1,
        transport="sync",
    )
    return Client(KEY, endpoint=server.url + "/v1/sam-audio-large", **{**defaults, **kw})


# an account's token bucket: 2 tokens refilled 10 times a second, a fractional Retry-After
# on each 429 (a storm of them for a client that does not know the rate)
TOKEN_BUCKET = dict(
    rate_limit_per_minute=10, rate_window=1.0, rate_limit_burst=2, send_retry_after="fraction"
)


def cut_short(send):
    """Call ``send()``, a request whose answer stops before its Content-Length; check it did.

    urllib3 2 raises (requests' ChunkedEncodingError); urllib3 1.x, which requests also
    accepts, returns the short body without a word. Returns the exception or the response.
    """
    try:
        r = send()
    except requests.RequestException as exc:
        return exc
    assert r.status_code == 200 and len(r.content) < int(r.headers["Content-Length"]), (
        "the body was not cut short"
    )
    return r


# the start of a `python -c` script run as on a machine without torch and torchcodec
HIDE_TORCH = """
import sys
class Hide:  # every finder answers "not installed" for torch, as on a machine without it
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchcodec"):
            return None
        return self.finder.find_spec(name, path, target)
    def __getattr__(self, attr):  # find_distributions and the rest
        return getattr(self.finder, attr)
sys.meta_path[:] = [Hide(f) for f in sys.meta_path]
"""


@pytest.fixture
def endpoint():
    with LocalEndpoint(keys={KEY: None}) as ep:
        yield ep


@pytest.fixture
def make_endpoint():
    """Start local endpoints with any options (keys default to the test key, unlimited);
    every one is stopped at the end of the test."""
    made = []

    def make(**options):
        options.setdefault("keys", {KEY: None})
        ep = LocalEndpoint(**options).start()
        made.append(ep)
        return ep

    yield make
    for ep in made:
        ep.stop()


@pytest.fixture
def make_client(request, tmp_path):
    """Build clients with fast back-off and their own cache, for the ``endpoint`` fixture's
    endpoint unless ``endpoint=`` is given; every one is closed at the end of the test."""
    made = []

    def make(**kw):
        if "endpoint" not in kw:  # the default endpoint is started only when used
            kw["endpoint"] = request.getfixturevalue("endpoint").url
        kw.setdefault("cache_dir", tmp_path / "cache")
        kw.setdefault("backoff_base", 0.01)
        kw.setdefault("rate_window", 1.0)
        kw.setdefault("progress", False)
        c = Client(kw.pop("api_key", KEY), **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def leave_paid(make_client):
    """``leave_paid(ep, y, sr, description="half", age=0, **client options)``: a queue
    client of ``ep`` gives up while ``y``'s job runs (read timeout 0.2 s, no retries),
    leaving the request paid, journalled and not collected (the job must take longer than
    0.2 s). ``age``: seconds its journal entry is made older (submitted that long ago).
    Returns the journal entry's path."""

    def leave(ep, y, sr, description="half", *, age=0.0, **kw):
        kw = {"transport": "queue", "timeout": (5, 0.2), "max_retries": 0, **kw}
        with (
            make_client(endpoint=ep.url, **kw) as c,
            pytest.raises(errors.APITimeoutError, match="paid for and kept"),
        ):
            journal = Path(c.cache_dir) / "journal"
            before = set(journal.glob("*.json"))
            c.isolate(y, sr, description)
        [entry] = set(journal.glob("*.json")) - before
        if age:
            doc = json.loads(entry.read_text())
            entry.write_text(json.dumps(dict(doc, created=doc["created"] - age)))
        return entry

    return leave


@pytest.fixture
def client(make_client):
    return make_client()
