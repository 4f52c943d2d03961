"""Shared fixtures: a real local endpoint on 127.0.0.1 and clients pointed at it."""

from __future__ import annotations

import pytest
import requests

from samaudio_data import Client
from samaudio_data.testing import LocalEndpoint

# a key that looks real, so that a leak anywhere is easy to find
KEY = "sk-test-9f8e7d6c5b4a-SECRET"


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
def make_client(endpoint, tmp_path):
    """Build clients for the endpoint with fast back-off and their own cache."""
    made = []

    def make(**kw):
        kw.setdefault("endpoint", endpoint.url)
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
def client(make_client):
    return make_client()
