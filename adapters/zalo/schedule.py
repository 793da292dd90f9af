"""Renewing the Zalo tokens before they run out, not only when Zalo refuses one.

An access token lives about 25 hours; the refresh token that renews it lives three months and
works once. Renewed only when Zalo refuses an access token, an OA quiet for three months would
find its refresh token dead on the day of the first alert. So a long-lived process (``loa
worker``, ``loa run``) runs :meth:`TokenSchedule.run` as a task of its own, which renews the pair

* when the access token has lived ``renew_share`` of its life (80 % by default: no request
  meets an expired token), and
* in any case when the pair is ``refresh_every`` old (``[zalo] refresh_every_days``, 30 days by
  default: a refresh token is never left near its three months), and
* at once when the pair's age is unknown (tokens given by hand, in the environment).

Renewals run under the store's lease (:meth:`adapters.zalo.tokens.TokenManager.renew_if`): of
several processes whose schedules fire together, the first renews and the others, finding a
fresh pair under the lease, take it. A renewal that fails is logged as an error and tried again
after ``retry_first`` seconds, doubling up to ``retry_max``; ``loa_zalo_token_refresh_failures``
counts the failures, ``loa_zalo_token_renewal_failing`` is 1 (``failing``) until one succeeds,
and ``loa_zalo_refresh_token_age_seconds`` keeps growing (alert ``LoaZaloRefreshTokenAgeing``).
"""

from __future__ import annotations

import asyncio
import logging
import time

from adapters.zalo.tokens import Issued, TokenError, TokenManager

log = logging.getLogger(__name__)

DAY = 86400.0


class TokenSchedule:
    """When the pair of ``tokens`` is renewed ahead of time (see the module's documentation)."""

    def __init__(self, tokens: TokenManager, *, refresh_every: float, renew_share: float = 0.8,
                 check: float = 60.0, retry_first: float = 30.0, retry_max: float = 300.0) -> None:
        self.tokens = tokens
        self.refresh_every = refresh_every  # seconds
        self.renew_share = renew_share
        self.check = check  # the store is read this often (another process may have renewed)
        self.retry_first = retry_first
        self.retry_max = retry_max
        self.failing = False  # the last scheduled renewal failed, none succeeded since

    def due_at(self, issued: Issued) -> float:
        """Epoch seconds when a pair so issued is to be renewed (0: now, its age is unknown)."""
        if not issued.at:
            return 0.0
        at = issued.at + self.refresh_every
        if issued.expires_in > 0:
            at = min(at, issued.at + self.renew_share * issued.expires_in)
        return at

    def due(self, issued: Issued, now: float | None = None) -> str:
        """Why a pair so issued is to be renewed now; "" if it is not yet."""
        now = time.time() if now is None else now
        if not issued.at:
            return "the tokens' age is unknown"
        if now < self.due_at(issued):
            return ""
        age = now - issued.at
        if age >= self.refresh_every:
            return f"the refresh token is {age / DAY:.1f} days old"
        return f"the access token has lived {age:.0f} s of {issued.expires_in:.0f} s"

    async def renew_now(self) -> bool:
        """Renew the pair unless another process renewed it since this call began (an operator
        asking twice at once renews once); True if this call renewed it."""
        began = time.time()
        before = self.tokens.refreshes
        await self.tokens.renew_if(lambda issued: "" if issued.at >= began else "asked now")
        return self.tokens.refreshes > before

    async def run(self) -> None:
        """Renew when due, for ever (until cancelled); failures are logged and tried again."""
        backoff = self.retry_first
        while True:
            try:
                issued = await self.tokens.look()
                if self.due(issued):
                    await self.tokens.renew_if(self.due)
                    issued = self.tokens.issued
            except TokenError as exc:
                log.error("ALERT Zalo token renewal failed: %s; tried again in %g s (the "
                          "refresh token dies 3 months after it was issued)", exc, backoff,
                          extra={"channel": "zalo"})
            except Exception:  # a bug must not end the renewals: logged, tried again
                log.exception("Zalo token renewal failed; tried again in %g s", backoff)
            else:
                self.failing = False
                backoff = self.retry_first
                wait = self.due_at(issued) - time.time()
                await asyncio.sleep(min(max(wait, min(1.0, self.check)), self.check))
                continue
            self.failing = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.retry_max)
