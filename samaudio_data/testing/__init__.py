"""A local stand-in for the endpoint, for tests, notebooks and offline work.

:class:`LocalEndpoint` is a real HTTP server on 127.0.0.1 that follows the SAM Audio Large
contract (keys, every error code, rate limits with ``Retry-After``, credits, injected faults);
:func:`separate` computes what it answers for an array. ``samaudio-data serve`` runs it.

Example
-------
>>> from samaudio_data.testing import LocalEndpoint
>>> with LocalEndpoint() as ep:
...     ep.url.endswith("/v1/sam-audio-large")
True
"""

from ._endpoint import (FRAME, MODEL_SR, LocalEndpoint, UploadInfo, choose_transform,
                        separate, serve_main)

__all__ = ["FRAME", "MODEL_SR", "LocalEndpoint", "UploadInfo", "choose_transform", "separate",
           "serve_main"]
