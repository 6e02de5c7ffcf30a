"""ALTCHA proof of work: challenges the gateway signs, solutions it accepts once.

A challenge (``GET /api/v1/challenge``) asks for a counter whose PBKDF2-SHA-256 key, at the
challenge's cost, starts with a zero byte; the client (the page's widget, or
serving/client.py) sends the solved payload, base64 JSON, in the ``X-Altcha`` header of its
upload. The gateway checks the HMAC signature, the expiry and the key, then records the
challenge as spent in the same storage as the per-client limits, so a solution buys exactly
one upload, on any replica.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Any, Literal

import altcha

from gateway.client_limits import Storage

HEADER = "X-Altcha"
ALGORITHM = "PBKDF2/SHA-256"
# One zero byte: 256 attempts on average, whatever the cost of one attempt.
KEY_PREFIX = "00"

# Why a proof of work is refused: the `reason` of the 403 answer (and of the API document).
Reason = Literal["missing", "wrong", "expired", "reused"]


class ProofOfWorkRejected(Exception):
    """The upload's proof of work is missing, wrong, expired or already used (403)."""

    status = 403

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def new_key() -> str:
    """A random HMAC key, for a gateway started without GATEWAY_PROOF_OF_WORK_KEY."""
    return secrets.token_hex(32)


class ProofOfWork:
    """Issues challenges signed with key, valid for expiry_s, and checks their solutions,
    each accepted once (spent challenges are remembered in storage until they expire)."""

    def __init__(self, key: str, cost: int, expiry_s: int, storage: Storage) -> None:
        if not key:
            raise ValueError("the proof-of-work key must not be empty")
        self._key = key
        self._cost = cost
        self._expiry_s = expiry_s
        self._storage = storage

    def challenge(self) -> dict[str, Any]:
        """A fresh signed challenge, as the ALTCHA widget fetches it."""
        challenge = altcha.create_challenge(
            ALGORITHM,
            self._cost,
            key_prefix=KEY_PREFIX,
            expires_at=int(time.time()) + self._expiry_s,
            hmac_secret=self._key,
        )
        document: dict[str, Any] = challenge.to_dict()
        return document

    async def spend(self, payload: str | None) -> None:
        """Accept payload once, or raise ProofOfWorkRejected saying why not."""
        if not payload:
            raise ProofOfWorkRejected(
                "missing",
                f"proof of work missing: solve GET /api/v1/challenge and send it in {HEADER}",
            )
        result = altcha.verify_solution(payload, self._key)
        if result.expired:
            raise ProofOfWorkRejected(
                "expired", "proof of work expired: solve a new challenge from /api/v1/challenge"
            )
        if not result.verified:
            raise ProofOfWorkRejected(
                "wrong", "proof of work wrong: the solution does not match a challenge we issued"
            )
        spent = altcha.Payload.from_base64(payload)
        expires_at = spent.challenge.parameters.expires_at or time.time() + self._expiry_s
        remember_s = max(1, math.ceil(expires_at - time.time()) + 1)
        uses = await self._storage.incr(
            f"clearmark/spent-challenge/{spent.challenge.signature}", remember_s
        )
        if uses > 1:
            raise ProofOfWorkRejected(
                "reused", "proof of work already used: solve a new challenge for every upload"
            )
