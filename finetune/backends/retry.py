"""The one retry loop of the hosted backends, and their one way to create a job without paying twice.

A hosted call fails in three ways: *transient* (HTTP 408/409/429/5xx, a dropped connection, a timeout:
the same request may succeed later), *definite* (any other 4xx: retrying cannot help) and *ambiguous*
(a timeout or 5xx on a create: the job may exist although we saw an error). Backends translate their
client's errors into `Transient` or `BackendError`; this module does the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from selfaware.finetune.backends.base import BackendError

T = TypeVar("T")

RETRY_STATUS = frozenset({408, 409, 429})  # plus every 5xx


def is_transient_status(status: int) -> bool:
    return status in RETRY_STATUS or status >= 500


class Transient(Exception):
    """A failure worth retrying; the message (already scrubbed of secrets) is reported if retries run out."""


@dataclass
class RetryPolicy:
    """Bounded exponential backoff: `max_attempts` tries, waits of base_delay * 2^k capped at max_delay."""

    max_attempts: int = 6
    base_delay: float = 2.0
    max_delay: float = 120.0
    sleep: Callable[[float], None] = field(default=time.sleep)

    def delay(self, attempt: int) -> float:
        return min(self.base_delay * 2 ** (attempt - 1), self.max_delay)


def call_with_retry(service: str, what: str, fn: Callable[[], T], policy: RetryPolicy, *,
                    before_retry: Callable[[], T | None] | None = None) -> T:
    """Run `fn`, retrying `Transient` failures; `before_retry` may end the loop early with a result (a
    job that an earlier, seemingly failed attempt did create). `BackendError`s propagate at once."""
    last = ""
    for attempt in range(policy.max_attempts):
        if attempt:
            policy.sleep(policy.delay(attempt))
            if before_retry is not None:
                found = before_retry()
                if found is not None:
                    return found
        try:
            return fn()
        except Transient as e:
            last = str(e)
    raise BackendError(f"{service} {what} failed after {policy.max_attempts} attempts: {last}")


def create_once(service: str, create: Callable[[], str], find: Callable[[], str | None], policy: RetryPolicy) -> str:
    """Create a job at most once: before every retry, and after the last failure, ask `find` whether an
    attempt that looked failed created the job after all."""
    try:
        return call_with_retry(service, "job create", create, policy, before_retry=find)
    except BackendError:
        found = find()
        if found is not None:
            return found
        raise
