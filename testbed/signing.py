"""Slack request signing, exactly as Slack does it (v0).

    X-Slack-Signature = "v0=" + hex(HMAC-SHA256(secret, b"v0:" + ts + b":" + body))
"""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: str | bytes, timestamp: int | str | bytes, body: bytes) -> str:
    """The X-Slack-Signature value for a request body sent at `timestamp` (epoch seconds)."""
    key = secret.encode() if isinstance(secret, str) else secret
    ts = timestamp if isinstance(timestamp, bytes) else str(timestamp).encode()
    digest = hmac.new(key, b"v0:" + ts + b":" + body, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def signed_headers(secret: str | bytes, body: bytes, now: int | None = None) -> dict[str, str]:
    """Headers for a Slack interactivity POST of `body` (form-encoded) signed at `now`."""
    ts = str(int(time.time()) if now is None else now)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(secret, ts, body),
    }
