"""The rules of an account's shared limits: pure functions of one small document and a clock.

Every sender of an account (threads, processes, the nodes of a cluster) must keep one pace,
one in-flight cap, one 429 back-off, one halt and one budget. The *rules* live here, once;
*where* the document lives is a swappable state (a :class:`State`): a JSON file under a lock
for the processes of one machine (:class:`~.statefile.FileState`), a Ray actor for a
cluster (``samaudio_data.ray``). A state applies a rule to its document atomically, with
*its own* clock, so senders on hosts whose clocks disagree still keep one pace: every time
a rule returns to a sender is a delay ("wait 0.3 s"), never a date, and a sender tells a
rule how long ago its operation began (``since``), never when.

What the document holds: ``last_sent`` / ``next_send`` / ``leaving`` (the pace and the
gate), ``backoff_until`` (a 429), ``rate_factor`` and ``slack`` (how close to the stated
rate: the spacing's safety margin starts at 4 %, tightens while no 429 comes and widens on
one), ``learned_per_window`` / ``announced_per_window`` (a limit learned from a 429 or
announced in ``x-ratelimit-*`` headers), ``latency``, ``window_limit`` (the in-flight
window when no rate is known), ``sent`` (recent send times), ``halt``, ``ledgers`` (money
spent, for ``max_cost``) and ``leases`` (in-flight slots held by workers of a cluster, each
expiring unless renewed).

Example
-------
>>> rules = Rules(max_concurrency=4, requests_per_minute=60, rate_window=60.0)
>>> st = {}
>>> rules.turn(st, 100.0, None, None)      # (seconds to wait, the turn reserved)
(0.0, 100.0)
>>> rules.turn(st, 100.0, None, None)[0] > 0.75   # the next one leaves ~1.04 s later
True
"""

from __future__ import annotations

import math
from typing import Protocol

from ..errors import Halted, Requeue
from .limitstate import SLACK_RANGE, Bounds, sanitize

SLACK_START = 0.04  # of the window: the spacing's first safety margin
SLACK_MIN, SLACK_MAX = SLACK_RANGE  # never below 1 % (99 % of the stated limit), nor above 16 %
MARGIN_MIN = 0.002  # seconds: network jitter is absolute (at 20 requests/s, 4 % is 2 ms)
_TIGHTEN = 1.0 / 250  # the margin shrinks by this share per success ...
_FLOOR_DECAY = 1.0 / 5000  # ... down to a floor learned from the last 429, itself decaying
_WIDEN = 2.0  # a 429 doubles the margin
_HEADROOM = 1.25  # in flight = rate x latency x headroom + 1
_START_CONCURRENCY = 2  # with no rate known
_FLOOR_PER_MINUTE = 5.0  # the slowest plan's rate: a 429 teaches no less, unless they go on
_DECREASE = 0.8  # rate factor kept after a 429
_RECOVER = 0.02  # rate factor regained per success
_LATENCY_ALPHA = 0.2
_HISTORY = 256  # send times kept (of the last window)
LEAD = 0.25  # a turn is granted this share of an interval early ...
LEAD_MAX = 0.05  # ... at most this many seconds; the gate keeps the exact moment
LEAVING_MAX = 2.0  # seconds a request may take to leave before the next goes anyway
LEAVING_POLL = 0.001
CLAIM_AHEAD = 0.003  # the gate is claimed this long before its time


class Ago:
    """A moment on a sender's clock, turned into "seconds ago" only when a state applies the
    rule (its own clock read, under its lock): whatever stands between the sender and the
    rule (a lock, a file, a message to an actor) is then not counted as part of the delay.

    >>> t = [10.0]
    >>> mark = Ago(9.5, lambda: t[0])
    >>> t[0] = 10.25  # the state got to it a little later
    >>> mark()
    0.75
    """

    __slots__ = ("at", "clock")

    def __init__(self, at: float, clock) -> None:
        self.at, self.clock = at, clock

    def __call__(self) -> float:
        return max(0.0, self.clock() - self.at)


def resolve(args: tuple) -> tuple:
    """The rule's arguments with every :class:`Ago` read now (call it as the clock is read)."""
    return tuple(a() if isinstance(a, Ago) else a for a in args)


class State(Protocol):
    """Where an account's document lives; see the module docstring.

    ``apply(rule, *args)`` runs ``Rules.run(rule, document, now, *args)`` atomically with
    the state's own clock (the document checked and bounded first; an :class:`Ago` among the
    arguments is read as the clock is, or before leaving the sender's process when the
    state lives elsewhere) and returns the rule's
    result (or raises its :class:`Halted` / :class:`Requeue`); ``slot(rules)`` holds one of
    the in-flight slots the rules allow.
    """

    def apply(self, rule: str, *args): ...

    def slot(self, rules: Rules): ...


class Rules:
    """The rules, for one account's stated settings (small and picklable)."""

    def __init__(
        self,
        *,
        max_concurrency: int = 16,
        requests_per_minute: float | None = None,
        rate_window: float = 60.0,
        retry_after_max: float = 60.0,
    ) -> None:
        self.max_concurrency = int(max_concurrency)
        self.requests_per_minute = float(requests_per_minute) if requests_per_minute else None
        self.rate_window = float(rate_window)
        self.retry_after_max = float(retry_after_max)

    def __repr__(self) -> str:
        return (
            f"Rules(max_concurrency={self.max_concurrency}, requests_per_minute="
            f"{self.requests_per_minute}, rate_window={self.rate_window}, "
            f"retry_after_max={self.retry_after_max})"
        )

    def run(self, rule: str, st: dict, now: float, *args) -> tuple:
        """Check and bound ``st`` (:func:`~.limitstate.sanitize`: a damaged record or a
        clock step never stalls a run), then apply ``rule``: ``(its result, the names of
        the values repaired)``."""
        bounds = Bounds(retry_after_max=self.retry_after_max, max_concurrency=self.max_concurrency)
        fixed = sanitize(st, now, bounds, self.interval)
        return getattr(self, rule)(st, now, *resolve(args)), fixed

    def interval(self, st: dict) -> float | None:
        """Seconds between sends allowed now (None: unpaced)."""
        rate = self.rate(st)
        return 1.0 / rate if rate else None

    def __eq__(self, other) -> bool:
        return isinstance(other, Rules) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash(tuple(sorted(vars(self).items())))

    # --- derived figures ----------------------------------------------------------------

    def base(self, st: dict) -> float | None:
        """Requests per window: stated (or a stricter announced one), else learned."""
        announced = st.get("announced_per_window")
        if self.requests_per_minute:
            return min(self.requests_per_minute, announced or math.inf)
        return announced or st.get("learned_per_window")

    def stated(self, st: dict) -> bool:
        """Whether the limit is known (stated, or announced by the provider), not learned."""
        return bool(self.requests_per_minute or st.get("announced_per_window"))

    def rate(self, st: dict) -> float | None:
        """Requests per second allowed now (None: no rate known, no pacing)."""
        base = self.base(st)
        if not base:
            return None
        ideal = self.rate_window / (base * st.get("rate_factor", 1.0))  # seconds apart
        return 1.0 / max(ideal * (1.0 + st.get("slack", SLACK_START)), ideal + MARGIN_MIN)

    def concurrency(self, st: dict) -> int:
        """In flight allowed now: Little's law from rate and latency, else the AIMD window."""
        rate, latency = self.rate(st), st.get("latency")
        window = int(st.get("window_limit", _START_CONCURRENCY))
        if rate is None:
            limit = window
        elif latency is None:
            limit = self.max_concurrency  # the pace alone spaces requests until latency is known
        else:
            limit = int(math.ceil(rate * latency * _HEADROOM)) + 1
        if not self.stated(st):  # no rate stated nor announced: never beyond the AIMD window
            limit = min(limit, window)
        return max(1, min(self.max_concurrency, limit))

    @staticmethod
    def check_halt(st: dict, now: float, since: float | None) -> None:
        """Raise :class:`Halted` if a fatal error came after the operation began."""
        h = st.get("halt")
        if since is not None and h and h["time"] >= now - since:
            raise Halted(h)

    def _recent(self, times: list[float], now: float) -> list[float]:
        cutoff = now - self.rate_window
        return [t for t in times[-_HISTORY + 1 :] if t > cutoff] + [now]

    # --- the pace -------------------------------------------------------------------------

    def allowed(self, st: dict, now: float) -> int:
        """The in-flight limit now."""
        return self.concurrency(st)

    def turn(
        self, st: dict, now: float, since: float | None, mine: float | None
    ) -> tuple[float, float | None]:
        """A sender's turn: ``(seconds to wait, its reserved time)``; pass the reserved time
        back on the next call. Each sender reserves one interval after the previous
        reservation, so waiters leave one at a time, and is let go a little early (a
        quarter of an interval, at most 50 ms): the gate keeps the exact moment."""
        self.check_halt(st, now, since)
        rate = self.rate(st)
        earliest = st.get("backoff_until", 0.0)
        lead = 0.0
        if rate:
            earliest = max(earliest, st.get("last_sent", 0.0) + 1.0 / rate)
            if mine is None:
                mine = max(now, earliest, st.get("next_send", 0.0))
                st["next_send"] = mine + 1.0 / rate
            at = max(mine, earliest)
            lead = min(LEAD_MAX, LEAD / rate)
        else:
            at = max(now, earliest)
        return max(0.0, at - lead - now), mine

    def claim_gate(
        self, st: dict, now: float, since: float | None, token: str
    ) -> tuple[bool, float]:
        """``(claimed, seconds)``: the gate is this sender's and it leaves in ``seconds``,
        or it asks again after ``seconds``. Raises :class:`Halted` or :class:`Requeue`."""
        self.check_halt(st, now, since)
        rate = self.rate(st)
        if not rate:
            return True, 0.0
        backoff = st.get("backoff_until", 0.0)
        if backoff - now > LEAD_MAX + CLAIM_AHEAD:
            raise Requeue(backoff)
        leaving = st.get("leaving")
        if leaving and now - leaving["since"] < LEAVING_MAX:
            return False, LEAVING_POLL
        at = max(st.get("last_sent", 0.0) + 1.0 / rate, backoff)
        if at - CLAIM_AHEAD <= now:
            st["leaving"] = {"since": now, "id": token}
            return True, max(0.0, at - now)
        return False, at - CLAIM_AHEAD - now

    def left(self, st: dict, now: float, token: str | None, ago: float | None = None) -> None:
        """A request's first bytes are out: the gate is free, the send recorded. ``ago``:
        how long ago they were out (the next request is spaced from that moment, not from
        when this report is applied: a lock and a file, or a message to an actor, take
        milliseconds, which would otherwise stretch every interval)."""
        if token is not None and (st.get("leaving") or {}).get("id") == token:
            del st["leaving"]
        sent = now - min(max(0.0, ago or 0.0), LEAVING_MAX)
        st.setdefault("first_send", sent)
        st["last_sent"] = max(st.get("last_sent", 0.0), sent)
        st["sent"] = self._recent(st.get("sent", []), now)

    # --- outcomes -------------------------------------------------------------------------

    def success(self, st: dict, now: float, latency: float) -> None:
        """A request succeeded after ``latency`` s: learn it, recover the rate, and tighten
        the spacing's margin (not below the last one that met a 429)."""
        old = st.get("latency")
        st["latency"] = (
            latency if old is None else (1 - _LATENCY_ALPHA) * old + _LATENCY_ALPHA * latency
        )
        st["rate_factor"] = min(1.0, st.get("rate_factor", 1.0) + _RECOVER)
        floor = st.get("slack_floor", SLACK_MIN)
        st["slack"] = max(floor, st.get("slack", SLACK_START) * (1 - _TIGHTEN))
        st["slack_floor"] = max(SLACK_MIN, floor * (1 - _FLOOR_DECAY))
        if not self.stated(st):
            limit = float(st.get("window_limit", _START_CONCURRENCY))
            if "learned_per_window" in st:  # after a 429: one more per round, and
                limit += 1.0 / limit  # the learned rate probed slowly upwards
                st["learned_per_window"] *= 1.0 + _RECOVER / 4
            else:  # before any: slow start, doubling per round
                limit += 1.0
            st["window_limit"] = min(float(self.max_concurrency), limit)

    def rate_limited(self, st: dict, now: float, wait: float) -> None:
        """A 429: everyone waits ``wait`` s, the margin widens, the rate and concurrency drop
        at once (once per back-off: the 429s of a burst count as one)."""
        fresh = now >= st.get("backoff_until", 0.0)
        st["backoff_until"] = max(st.get("backoff_until", 0.0), now + max(0.0, wait))
        st["next_send"] = st["backoff_until"]
        st["rate_limited"] = st.get("rate_limited", 0) + 1
        if not fresh:
            return
        slack = st.get("slack", SLACK_START)
        st["slack_floor"] = min(SLACK_MAX, max(st.get("slack_floor", SLACK_MIN), slack * 1.5))
        st["slack"] = min(SLACK_MAX, slack * _WIDEN)
        if not self.stated(st):
            # what the account accepted over the last window: the requests that left in it
            # but this one, scaled to a window when the run is younger than one
            sent = [t for t in st.get("sent", []) if t > now - self.rate_window]
            span = min(
                self.rate_window, max(now - st.get("first_send", now), self.rate_window / 10)
            )
            accepted = max(1.0, (len(sent) - 1) * self.rate_window / span * _DECREASE)
            known = st.get("learned_per_window")
            floor = _FLOOR_PER_MINUTE * self.rate_window / 60.0
            if known is not None and known <= floor * (1 + 1e-6):
                # paced at the slowest plan's rate and still refused: lower, slowly
                learned = max(1.0, known * _DECREASE)
            else:
                learned = max(floor, accepted if known is None else min(known, accepted))
            st["learned_per_window"] = learned
            st["window_limit"] = max(1.0, float(st.get("window_limit", _START_CONCURRENCY)) / 2)
        else:
            st["rate_factor"] = max(0.2, st.get("rate_factor", 1.0) * _DECREASE)

    def announced(
        self,
        st: dict,
        now: float,
        limit: float | None,
        remaining: float | None,
        reset: float | None,
    ) -> None:
        """The provider's ``x-ratelimit-*`` headers: its limit per window, what is left of
        it and when it resets. Nothing left means nobody sends before the reset."""
        if limit is not None and limit >= 1:
            st["announced_per_window"] = float(limit)
        if remaining is not None and remaining < 1 and reset is not None and reset > 0:
            st["backoff_until"] = max(
                st.get("backoff_until", 0.0), now + min(reset, self.rate_window)
            )
            st["next_send"] = max(st.get("next_send", 0.0), st["backoff_until"])

    def halt(self, st: dict, now: float, status: int | None, kind: str, message: str) -> None:
        """A fatal error: operations that began before now must stop."""
        st["halt"] = {"time": now, "status": status, "kind": kind, "message": message}

    # --- money ----------------------------------------------------------------------------

    def spend(self, st: dict, now: float, ledger: str, amount: float, cap: float | None) -> bool:
        """Add ``amount`` to ``ledger`` unless that would pass ``cap``; True if added."""
        ledgers = st.setdefault("ledgers", {})
        total = ledgers.get(ledger, 0.0) + amount
        if cap is not None and amount > 0 and total > cap + 1e-9:
            return False
        ledgers[ledger] = max(0.0, total)
        return True

    def ledger(self, st: dict, now: float, ledger: str) -> float:
        """The amount recorded in ``ledger``."""
        return st.get("ledgers", {}).get(ledger, 0.0)

    # --- leases: in-flight slots of a cluster's workers -----------------------------------

    def lease(self, st: dict, now: float, lease: str, ttl: float) -> bool:
        """Take an in-flight slot for ``lease`` (expiring ``ttl`` s from now unless renewed)
        if fewer than the allowed number are held; True if taken."""
        leases = {k: v for k, v in st.get("leases", {}).items() if v > now}
        taken = len(leases) < self.concurrency(st)
        if taken:
            leases[lease] = now + ttl
        st["leases"] = leases
        return taken

    def renew(self, st: dict, now: float, leases: list[str], ttl: float) -> None:
        """Extend the leases still held (an expired one is gone: its slot was given away)."""
        held = st.get("leases", {})
        for k in leases:
            if held.get(k, 0.0) > now:
                held[k] = now + ttl

    def release(self, st: dict, now: float, lease: str) -> None:
        """Give a slot back."""
        st.get("leases", {}).pop(lease, None)

    # --- figures --------------------------------------------------------------------------

    def snapshot(self, st: dict, now: float) -> dict:
        """Allowed rate and concurrency, latency, achieved rate, 429s, the spacing margin."""
        base = self.base(st)
        rate = None if not base else base / self.rate_window * st.get("rate_factor", 1.0)
        recent = [t for t in st.get("sent", []) if t > now - self.rate_window]
        span = recent[-1] - recent[0] if len(recent) > 1 else None
        return {
            "rate_per_minute": None if rate is None else rate * 60.0,
            "concurrency": self.concurrency(st),
            "latency": st.get("latency"),
            "achieved_per_minute": (len(recent) - 1) / span * 60.0 if span else None,
            "rate_limited": st.get("rate_limited", 0),
            "slack": st.get("slack", SLACK_START),
        }
