"""One retry policy for every call to the outreach service (send, withdraw, events).

Built on tenacity (already an Airflow dependency) instead of hand-written loops, so the three
calls cannot drift apart again:

* 429: wait `Retry-After` (capped), and it is NOT an attempt (up to `max_throttled` in a row);
* 5xx, timeouts, dropped connections: "nothing is known" (contract), exponential backoff with
  full jitter, counted against `max_attempts`;
* 401/403: `OutreachAuthError` at once: the token or the server is misconfigured, retrying
  cannot help; the task stops without Airflow retries and the data team is alerted;
* anything else is a definitive answer and is returned for the caller to interpret
  (2xx, 404 on withdrawal, 409/422 on send).

When the attempts are spent the last (unknown) answer is returned: callers keep the work
queued for the next run instead of guessing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import tenacity

from upstream.routing.client import Answer
from upstream.routing.errors import OutreachAuthError
from upstream.settings import Settings

DEFAULT_RETRY_AFTER = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6            # unknown outcomes (5xx, timeouts, drops) per call
    backoff_seconds: float = 0.5     # base of the full-jitter exponential backoff
    max_backoff_seconds: float = 30.0
    max_throttled: int = 20          # 429s honoured per call before the call gives up
    max_retry_after_seconds: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[float, float], float] = field(default=random.uniform)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> RetryPolicy:
        return cls(max_attempts=settings.outreach.max_attempts,
                   backoff_seconds=settings.outreach.backoff_seconds, **overrides)

    def backoff(self, failures: int) -> float:
        """Full jitter (AWS architecture blog): uniform(0, min(cap, base * 2^(n-1)))."""
        return self.jitter(0, min(self.max_backoff_seconds,
                                  self.backoff_seconds * 2 ** max(0, failures - 1)))

    def run(self, call: Callable[[], Answer], *, what: str,
            before_attempt: Callable[[], None] | None = None) -> Answer:
        """Call until a definitive answer or the budget is spent; return the last answer.

        `before_attempt` runs before every request (routing records a send on the audit log
        before its bytes leave). `what` names the call in error messages (no values).
        """
        answers: list[Answer] = []

        def attempt() -> Answer:
            answer = call()
            answers.append(answer)
            if answer.status in (401, 403):
                raise OutreachAuthError(
                    f"outreach service answered {answer.status} to {what}: check the "
                    "upstream_outreach connection (or UPSTREAM_OUTREACH_URL/TOKEN)")
            return answer

        def failures() -> int:
            return sum(a.unknown for a in answers)

        def stop(_state: tenacity.RetryCallState) -> bool:
            throttled_run = 0
            for a in reversed(answers):
                if not a.throttled:
                    break
                throttled_run += 1
            return failures() >= self.max_attempts or throttled_run > self.max_throttled

        def wait(_state: tenacity.RetryCallState) -> float:
            last = answers[-1]
            if last.throttled:
                pause = last.retry_after if last.retry_after is not None else DEFAULT_RETRY_AFTER
                return min(self.max_retry_after_seconds, pause)
            return self.backoff(failures())

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda a: a.unknown or a.throttled),
            stop=stop,
            wait=wait,
            sleep=self.sleep,
            before=(lambda _state: before_attempt()) if before_attempt else tenacity.before_nothing,
            retry_error_callback=lambda state: state.outcome.result(),
        )
        return retrying(attempt)
