"""The token bucket behind per-user rate limits, on a clock the test moves."""

from __future__ import annotations

import pytest

from imagetag.entrypoints.http.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_next_request_waits_for_a_token() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)

    assert [limiter.acquire("alice") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("alice") == pytest.approx(1.0)
    clock.now += 0.5
    assert limiter.acquire("alice") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("alice") == 0.0


def test_users_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(per_minute=60, burst=1, clock=Clock())

    assert limiter.acquire("alice") == 0.0
    assert limiter.acquire("alice") > 0
    assert limiter.acquire("bob") == 0.0


def test_an_idle_bucket_refills_only_up_to_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=600, burst=2, clock=clock)
    limiter.acquire("alice")
    clock.now += 3600

    assert [limiter.acquire("alice") > 0 for _ in range(3)] == [False, False, True]


@pytest.mark.parametrize(("per_minute", "burst"), [(0, 1), (1, 0), (-5, 10)])
def test_a_limit_needs_a_positive_rate_and_burst(per_minute: int, burst: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(per_minute=per_minute, burst=burst)
