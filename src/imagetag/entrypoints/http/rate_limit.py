"""Per-caller request rate limits: a token bucket per user, in this process's memory.

Each user may make ``per_minute`` requests a minute on average, in bursts of up to
``burst``; beyond that the answer is 429 with ``Retry-After``. Limits are per process: with
N API processes a user gets up to N times the rate (a shared store such as PostgreSQL or
Redis would be the next step for a fleet).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.types import ASGIApp, Receive, Scope, Send

from imagetag.domain.principals import Principal

# Bounds memory: buckets of users idle long enough to be full again are dropped first.
MAX_TRACKED_USERS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by user; ``clock`` returns seconds (monotonic)."""

    def __init__(
        self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute <= 0 or burst <= 0:
            raise ValueError("a rate limit needs a positive rate and burst")
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, user: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds until one is free."""
        now = self._clock()
        bucket = self._buckets.get(user)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_USERS:
                self._forget_full_buckets(now)
            bucket = self._buckets[user] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def _forget_full_buckets(self, now: float) -> None:
        full_after = self._burst / self._rate
        self._buckets = {
            user: bucket
            for user, bucket in self._buckets.items()
            if now - bucket.updated < full_after
        }
        if len(self._buckets) >= MAX_TRACKED_USERS:
            self._buckets.clear()


def rate_limiting(limiter: RateLimiter) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware, placed after authentication: it limits the principal in ``scope``."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def limit(scope: Scope, receive: Receive, send: Send) -> None:
            principal = scope.get("user") if scope["type"] == ScopeType.HTTP else None
            if isinstance(principal, Principal):
                wait = limiter.acquire(principal.user)
                if wait > 0:
                    seconds = max(1, math.ceil(wait))
                    raise TooManyRequestsException(
                        f"too many requests from {principal.user}; retry in {seconds} s",
                        headers={"Retry-After": str(seconds)},
                    )
            await app(scope, receive, send)

        return limit

    return middleware
