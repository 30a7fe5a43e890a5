"""The one token bucket (strongroom/ratelimit.py) the store guard, the work queue and Events ration with."""

from __future__ import annotations

import pytest

from strongroom.ratelimit import TokenBucket


def test_a_full_bucket_gives_its_burst_then_one_token_per_interval() -> None:
    bucket = TokenBucket(rate=2, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.seconds_to_token() == pytest.approx(0.5)
    assert not bucket.take(0.4)
    assert bucket.take(0.5)
    assert not bucket.take(0.5)


def test_tokens_saved_up_never_exceed_the_burst() -> None:
    bucket = TokenBucket(rate=10, burst=2, now=0.0)
    assert bucket.refill(3600.0) == 2
    assert [bucket.take(3600.0) for _ in range(3)] == [True, True, False]


def test_spending_without_a_whole_token_stops_at_zero() -> None:
    bucket = TokenBucket(rate=1, burst=2, now=0.0)
    for _ in range(5):  # used flat out where it is not rationed
        bucket.spend(0.0)
    assert bucket.tokens == 0
    # It arrives with nothing saved, and no debt: one token a second from now on.
    assert not bucket.take(0.5)
    assert bucket.take(1.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_settings_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="token bucket"):
        TokenBucket(rate, burst, now=0.0)
