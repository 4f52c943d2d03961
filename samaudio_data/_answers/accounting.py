"""What a call costs and what the account says about it: the ``max_cost`` budget, reserved
per attempt and refunded when nothing was billed, and what the provider's headers announce
(its remaining credits, its rate limit)."""

from __future__ import annotations

import math

from .. import errors
from .._models import Budget, Usage
from .._net.queue import QueueExchange
from .._net.retry import rate_limit_headers
from .._state.limits import SharedLimits


def reserve(budget: Budget, price: float, usage: Usage) -> None:
    """Hold one call's ``price`` in ``budget``; ``BudgetExceededError`` before anything is
    sent when it, or the provider's credits figure, cannot pay for it."""
    if not budget.reserve(price):
        spent = budget.spent
        raise errors.BudgetExceededError(
            f"max_cost ${budget.max_cost:.2f}: ${spent:.2f} spent so far, and the next "
            f"call (${price:.3f}) would bring it to "
            f"${spent + price:.2f}. Nothing more was sent; raise max_cost "
            "to continue (paid results are cached)."
        )
    left = usage.remaining_credits  # the provider's own figure, when it sends one
    if left is not None and left < price:
        budget.refund(price)
        raise errors.BudgetExceededError(
            f"the provider reports ${left:.3f} of credits left, less than one call "
            f"(${price:.3f}). Nothing more was sent; top up the account, "
            "then run again (paid results are cached)."
        )


def refund(
    budget: Budget | None,
    price: float,
    billed: float,
    held: dict,
    exchange: QueueExchange,
    key: str,
) -> None:
    """Give back the reservation ``held`` for a request that was not billed."""
    # a queued request accepted is paid for (and its reservation with it) until the queue
    # reports it FAILED; one collected from an earlier run's journal was never reserved
    # by this one
    if (
        budget is not None
        and not billed
        and held["reserved"]
        and not held.get("submitted")
        and exchange.pending(key) is None
    ):
        budget.refund(price)
        held["reserved"] = False


def note_headers(headers: dict, *, limits: SharedLimits, usage: Usage) -> None:
    """What a paid answer's (or a 429's) headers announce: the provider's own credits
    figure, and its rate limit (``x-ratelimit-*``), which every sender then keeps to."""
    limits.record_announced(*rate_limit_headers(headers))
    value = headers.get("x-remaining-credits")
    if value is None:
        return
    try:
        credits = float(value)
    except ValueError:
        return
    if math.isfinite(credits) and credits >= 0:  # "nan", "inf", "-5" are not figures
        usage.remaining_credits = credits
