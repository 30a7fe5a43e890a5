"""A token bucket: how often something may happen, with a burst saved up.

One implementation for the three places that ration: the store guard waits for a token before each store
request (stores/guard.py), the work queue pauses a busy namespace until its next token
(operator/workqueue.py), and Events are skipped without one (operator/events.py). Time is passed in
(monotonic seconds): each caller owns its clock, so tests drive it.
"""

from __future__ import annotations


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; starts full."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(
                f"a token bucket needs a rate above 0 and a burst of at least 1, got {rate}, {burst}"
            )
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def refill(self, now: float) -> float:
        """Add the tokens earned since the last look; the tokens there are now (fractions count)."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens

    def take(self, now: float) -> bool:
        """Spend a whole token if there is one."""
        if self.refill(now) < 1:
            return False
        self.tokens -= 1
        return True

    def spend(self, now: float) -> None:
        """Spend a token whether or not a whole one is there, down to zero at the least: for a caller that
        waited `seconds_to_token()`, or one that is not rationed now but must arrive with what it used."""
        self.tokens = max(0.0, self.refill(now) - 1)

    def seconds_to_token(self) -> float:
        """How long from the last refill until a whole token is there (0 if one is)."""
        return max(0.0, (1 - self.tokens) / self.rate)
