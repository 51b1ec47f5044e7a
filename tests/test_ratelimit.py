"""The shared client-side rate budget: under PagerDuty's limit, engagement first, thread-safe."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdorgsync.pagerduty import PagerDutyClient, RateLimiter
from pdorgsync.ratelimit import (
    DEFAULT_PER_MINUTE,
    PAGERDUTY_PER_MINUTE,
    TokenBucketLimiter,
    limiter_for,
    reset_registry,
)
from tests.support.clocks import TickClock


class FakeClock(TickClock):
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        super().__init__(1000.0)


class GatedClock(FakeClock):
    """Sleeps block (really, briefly) until the test opens the gate, then advance the clock."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def sleep(self, seconds: float) -> None:
        assert self.gate.wait(timeout=10), "test never opened the gate"
        super().sleep(seconds)


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


def _run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
        assert not thread.is_alive(), "a limiter caller is stuck"


@pytest.fixture(autouse=True)
def _fresh_registry() -> None:
    reset_registry()


def test_default_budget_stays_below_pagerduty_limit() -> None:
    """The default budget plus a full burst never exceeds PagerDuty's 960 requests per minute."""
    limiter = TokenBucketLimiter()
    assert limiter.per_minute == DEFAULT_PER_MINUTE
    assert limiter.per_minute + limiter.burst < PAGERDUTY_PER_MINUTE


@settings(max_examples=30, deadline=None)
@given(
    per_minute=st.integers(min_value=60, max_value=960),
    window_start=st.floats(min_value=0.0, max_value=120.0),
)
def test_any_sixty_second_window_admits_at_most_budget_plus_burst(
    per_minute: int, window_start: float
) -> None:
    """Requests granted in any simulated 60 s window never exceed the budget plus the burst."""
    clock = FakeClock()
    limiter = TokenBucketLimiter(per_minute, clock=clock, sleep=clock.sleep)
    start = clock()
    grants: list[float] = []
    while clock() - start < 240:
        limiter.acquire("reconcile")
        grants.append(clock() - start)
    in_window = [t for t in grants if window_start <= t < window_start + 60]
    assert len(in_window) <= per_minute + limiter.burst
    # ... and the limiter does not waste the budget either.
    assert len(in_window) >= per_minute - 2


def test_budget_holds_with_many_threads_over_a_simulated_minute() -> None:
    """Eight threads hammering one limiter for a simulated minute get at most 930 requests through."""
    clock = FakeClock()
    limiter = TokenBucketLimiter(900, burst=30, clock=clock, sleep=clock.sleep)
    start = clock()
    granted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            limiter.acquire("reconcile")
            elapsed = clock() - start
            if elapsed >= 60:
                return
            with lock:
                granted.append(elapsed)

    _run_threads([worker] * 8)
    assert 890 <= len(granted) <= 930


def test_engagement_is_served_before_waiting_reconcile_requests() -> None:
    """Engagement requests that arrive while reconcile requests queue are all served first."""
    clock = GatedClock()
    limiter = TokenBucketLimiter(60, burst=1, clock=clock, sleep=clock.sleep)
    limiter.acquire("reconcile")  # empty the bucket
    order: list[str] = []
    lock = threading.Lock()

    def caller(priority: str, name: str) -> Callable[[], None]:
        def run() -> None:
            limiter.acquire(priority)
            with lock:
                order.append(name)

        return run

    reconcilers = [
        threading.Thread(target=caller("reconcile", f"r{i}"), daemon=True) for i in range(5)
    ]
    for thread in reconcilers:
        thread.start()
    _wait_until(lambda: limiter.waiting == 5)
    engagers = [
        threading.Thread(target=caller("engagement", f"e{i}"), daemon=True) for i in range(3)
    ]
    for thread in engagers:
        thread.start()
    _wait_until(lambda: limiter.waiting == 8)
    clock.gate.set()
    for thread in reconcilers + engagers:
        thread.join(timeout=10)
    assert sorted(order[:3]) == ["e0", "e1", "e2"]
    assert sorted(order[3:]) == [f"r{i}" for i in range(5)]
    # Same priority: first come, first served.
    assert order[3:] == sorted(order[3:])


def test_engagement_is_never_starved_by_a_reconcile_flood() -> None:
    """Under four reconcile threads at full speed, an engagement waits at most about two token intervals."""
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        # The fake clock jumps at once; a real sleep leaves the limiter's lock free for
        # a while, so give the other threads that moment too (without it a thread
        # waiting for the lock can be overtaken for many "intervals" on a loaded machine).
        clock.sleep(seconds)
        time.sleep(0.0002)

    limiter = TokenBucketLimiter(900, burst=30, clock=clock, sleep=sleep)
    interval = 60 / 900
    stop = threading.Event()
    waits: list[float] = []

    def reconcile() -> None:
        while not stop.is_set():
            limiter.acquire("reconcile")

    def engage() -> None:
        try:
            for _ in range(50):
                before = clock()
                limiter.acquire("engagement")
                waits.append(clock() - before)
                time.sleep(0.0005)  # let the flood refill the queue between engagements
        finally:
            stop.set()

    _run_threads([reconcile] * 4 + [engage])
    assert len(waits) == 50
    # First come, first served would put each engagement behind the four queued
    # reconcile requests (about 4-5 intervals every time). Served first, it waits
    # for the next token only. Threads share the fake clock, so a rare wait also
    # counts a reconcile request that was already sleeping at the head of the
    # queue: judge the typical wait strictly and the worst case loosely.
    ordered = sorted(waits)
    assert ordered[len(ordered) // 2] <= interval + 1e-9  # median: the very next token
    assert ordered[int(len(ordered) * 0.9)] <= 2 * interval + 1e-9
    assert ordered[-1] <= 6 * interval + 1e-9
    stats = limiter.stats()
    assert stats.granted["reconcile"] > 0
    assert stats.granted["engagement"] == 50


def test_limiter_for_shares_one_limiter_per_token() -> None:
    """The reconcile loop and the worker get the same limiter for the same token, another for another."""
    first = limiter_for("token-a")
    assert limiter_for("token-a") is first
    assert limiter_for("token-b") is not first
    assert first.per_minute == DEFAULT_PER_MINUTE


def test_limiter_for_applies_a_configured_budget_to_every_holder() -> None:
    """Setting a budget through limiter_for changes it for everyone holding that limiter."""
    held = limiter_for("token-a")
    limiter_for("token-a", per_minute=600)
    assert held.per_minute == 600
    assert limiter_for("token-a").per_minute == 600  # None keeps the budget


def test_registry_never_keeps_the_token() -> None:
    """The registry is keyed by a hash: the token string is nowhere in the limiter's state."""
    import pdorgsync.ratelimit as ratelimit

    limiter_for("u+secret-token-value")
    assert all("secret-token-value" not in key for key in ratelimit._registry)
    assert "secret-token-value" not in repr(vars(limiter_for("u+secret-token-value")))


def test_invalid_budgets_are_refused() -> None:
    """A zero budget or a burst below one request is a clear error."""
    with pytest.raises(ValueError, match="per_minute"):
        TokenBucketLimiter(0)
    with pytest.raises(ValueError, match="burst"):
        TokenBucketLimiter(60, burst=0.5)


def test_implements_the_client_protocol_and_the_client_consults_it() -> None:
    """The PagerDuty client asks the shared limiter, with its priority, before every attempt."""
    calls: list[str] = []

    class Recording(TokenBucketLimiter):
        def acquire(self, priority: str = "normal") -> None:
            calls.append(priority)
            super().acquire(priority)

    limiter: RateLimiter = Recording(900)
    client = PagerDutyClient(
        "sandbox",
        "http://127.0.0.1:9",  # discard port: refused at once, retried once
        limiter=limiter,
        priority="engagement",
        max_attempts=2,
        sleep=lambda s: None,
        timeout=1,
    )
    with pytest.raises(Exception, match="cannot connect"):
        client.get("/users")
    assert calls == ["engagement", "engagement"]
