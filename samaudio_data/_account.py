"""The account: credits left, read without spending anything.

Example
-------
>>> from samaudio_data._transport import Transport
>>> from samaudio_data.testing import LocalEndpoint
>>> with LocalEndpoint(keys={"k": 1.5}) as ep:
...     credits(Transport(ep.url, "k"))
1.5
"""

from __future__ import annotations

import json

from . import errors
from ._transport import Transport
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
