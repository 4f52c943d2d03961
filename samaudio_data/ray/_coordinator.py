"""One coordinator per account across a Ray cluster: a named actor holding the shared limits.

The rules are those of one machine (:class:`samaudio_data._state.rules.Rules`); only where their
document lives changes. :class:`Coordinator` names a detached Ray actor (in the
``samaudio_data`` namespace) that keeps one document per account (an identity of endpoint
and key, never the key) and applies each rule on *its own* clock, so nodes whose clocks
disagree keep one pace. A sender:

1. takes a **lease** on an in-flight slot (:meth:`ActorState.slot`): the actor grants it
   when fewer than the allowed number are held, waiting without polling; the sender's
   process renews its leases every ``lease_ttl / 3`` seconds, so a lease of a worker that
   died (its node lost, its process killed) expires after ``lease_ttl`` and its slot goes
   to another: nothing waits for a dead holder;
2. reserves its **turn** (``turn``) and **confirms** at the wire (``claim_gate`` / ``left``,
   passed as the request's headers are written, see ``samaudio_data._net.wire``);
3. **reports** the outcome (``success``, ``rate_limited``, ``halt``, ``spend``).

Every answer the actor gives a sender is a delay, never a date. The actor reserves no CPU
and is placed on the node that created it (the driver's), softly.

Example
-------
>>> coord = Coordinator(name="doc-example")
>>> coord
Coordinator(name='doc-example', lease_ttl=30.0)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
import weakref
from collections.abc import Iterator

from .._state.rules import Halted, Requeue, Rules, resolve

NAMESPACE = "samaudio_data"
_LEASE_WAIT = 1.0  # seconds one lease request waits at the actor before asking again


class CoordinatorActor:
    """The actor's body: one document per account, the rules applied on the actor's clock."""

    def __init__(self) -> None:
        self._docs: dict[str, dict] = {}
        self._freed: asyncio.Event | None = None  # created in the actor's loop

    def _doc(self, account: str) -> dict:
        return self._docs.setdefault(account, {})

    async def apply(self, account: str, rules: Rules, rule: str, args: tuple) -> tuple[str, object]:
        """``("ok", result)`` or ``("raise", exc)`` for :class:`Halted` / :class:`Requeue`."""
        try:
            result, _ = rules.run(rule, self._doc(account), time.time(), *args)
        except (Halted, Requeue) as exc:
            return "raise", exc
        if rule in ("release", "success", "rate_limited") and self._freed is not None:
            self._freed.set()
        return "ok", result

    async def lease(self, account: str, rules: Rules, lease: str, ttl: float, wait: float) -> bool:
        """Take a slot for ``lease``, waiting up to ``wait`` s for one to be free."""
        if self._freed is None:
            self._freed = asyncio.Event()
        freed = self._freed
        end = time.monotonic() + wait
        while True:
            if rules.run("lease", self._doc(account), time.time(), lease, ttl)[0]:
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            freed.clear()
            with contextlib.suppress(asyncio.TimeoutError):  # expiries free slots too
                await asyncio.wait_for(freed.wait(), timeout=min(left, 0.25))

    async def ping(self) -> str:
        return "ok"


class Coordinator:
    """Names the cluster's coordinator actor; pass it to ``Client(coordinator=...)``.

    Small and picklable (a name and a lease time): each worker finds the actor by name.
    ``lease_ttl`` is how long a slot of a worker that stopped renewing it (it died) stays
    taken.
    """

    def __init__(self, name: str = "samaudio-coordinator", *, lease_ttl: float = 30.0) -> None:
        self.name = str(name)
        self.lease_ttl = float(lease_ttl)

    def __repr__(self) -> str:
        return f"Coordinator(name={self.name!r}, lease_ttl={self.lease_ttl})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Coordinator) and (self.name, self.lease_ttl) == (
            other.name,
            other.lease_ttl,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.lease_ttl))

    def actor(self):
        """The actor, created (on this node, reserving no CPU) if it does not exist yet."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        try:
            return ray.get_actor(self.name, namespace=NAMESPACE)
        except ValueError:
            pass
        here = ray.get_runtime_context().get_node_id()
        return (
            ray.remote(CoordinatorActor)
            .options(
                name=self.name,
                namespace=NAMESPACE,
                get_if_exists=True,
                lifetime="detached",
                num_cpus=0,
                max_concurrency=1000,
                max_restarts=-1,
                max_task_retries=-1,
                scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True),
            )
            .remote()
        )

    def state(self, account: str, rules: Rules) -> ActorState:
        """The shared limits' state of ``account`` (see ``samaudio_data._state.rules.State``)."""
        return ActorState(self, account, rules)

    def snapshot(self, account: str, rules: Rules) -> dict:
        """The account's figures as the actor sees them."""
        return self.state(account, rules).apply("snapshot")


class ActorState:
    """A sender's side of the coordinator: rules applied by the actor, slots as leases."""

    def __init__(self, coordinator: Coordinator, account: str, rules: Rules) -> None:
        self.coordinator = coordinator
        self.account = account
        self.rules = rules
        self._actor = None
        self._lock = threading.Lock()

    def _handle(self):
        with self._lock:
            if self._actor is None:
                self._actor = self.coordinator.actor()
            return self._actor

    def apply(self, rule: str, *args):
        """``rules.<rule>(document, actor's now, *args)``, atomically, at the actor."""
        import ray

        args = resolve(args)  # (a moment on this worker's clock: a delay from here on)
        kind, value = ray.get(self._handle().apply.remote(self.account, self.rules, rule, args))
        if kind == "raise":
            raise value
        return value

    @contextlib.contextmanager
    def slot(self, rules: Rules) -> Iterator[None]:
        """Hold a leased in-flight slot (renewed in the background) while inside."""
        import ray

        lease = uuid.uuid4().hex
        ttl = self.coordinator.lease_ttl
        while not ray.get(
            self._handle().lease.remote(self.account, rules, lease, ttl, _LEASE_WAIT)
        ):
            pass
        _Renewer.get().add(self, lease)
        try:
            yield
        finally:
            _Renewer.get().discard(self, lease)
            self.apply("release", lease)


class _Renewer:
    """One thread per process renewing the leases its senders hold (every ttl / 3 s)."""

    _instance = None
    _guard = threading.Lock()

    def __init__(self) -> None:
        self._held: weakref.WeakKeyDictionary[ActorState, set[str]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name="samaudio-lease-renewer", daemon=True
        )
        self._thread.start()

    @classmethod
    def get(cls) -> _Renewer:
        with cls._guard:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def add(self, state: ActorState, lease: str) -> None:
        with self._lock:
            self._held.setdefault(state, set()).add(lease)

    def discard(self, state: ActorState, lease: str) -> None:
        with self._lock:
            self._held.get(state, set()).discard(lease)

    def _run(self) -> None:
        while True:
            with self._lock:
                work: list[tuple[ActorState, list[str]]] = [
                    (st, sorted(ls)) for st, ls in self._held.items() if ls
                ]
            ttl = min([st.coordinator.lease_ttl for st, _ in work] or [30.0])
            for st, leases in work:
                with contextlib.suppress(Exception):  # the actor restarting: next round
                    st.apply("renew", leases, st.coordinator.lease_ttl)
            time.sleep(max(0.05, ttl / 3) if work else 0.1)
