"""Ray Data: isolate sounds across a cluster, at one account's pace (``samaudio-data[ray]``).

- :func:`isolate` maps a ``ray.data.Dataset`` through the endpoint on an actor pool that
  reserves almost no CPU, adding the same columns as :func:`samaudio_data.isolate`;
- :class:`IsolateBatches` is the callable class it runs, for your own ``map_batches``;
- :class:`Coordinator` names the Ray actor that holds one account's limits (pace, in-flight
  leases, 429 back-off, halt, ``max_cost``) for every node: pass it to
  ``Client(coordinator=...)``.

The key reaches workers through their environment (``SEGMIND_API_KEY`` exported on every
node), never through a task, a Ray object or the dashboard. See the README's "Beyond one
machine".

Example
-------
>>> from samaudio_data.ray import Coordinator
>>> Coordinator("my-account", lease_ttl=10)
Coordinator(name='my-account', lease_ttl=10.0)
"""

from ._coordinator import Coordinator
from ._isolate import IsolateBatches, isolate

__all__ = ["Coordinator", "IsolateBatches", "isolate"]
