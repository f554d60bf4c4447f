"""Names in Redis, and the secrets that must never reach it: the API key and the URL's password."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Keys", "account_id", "redact_url", "webhook_secret", "webhook_token", "worker_name"]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def account_id(api_key: str) -> str:
    """Return a stable, one-way name for an API key: every worker on one key computes the same."""
    digest = hashlib.blake2b(api_key.encode(), digest_size=12, person=b"ttapi-account")
    return digest.hexdigest()


def webhook_secret(api_key: str) -> bytes:
    """Return the key material webhook tokens are derived from (never the API key itself)."""
    return hashlib.blake2b(api_key.encode(), digest_size=32, person=b"ttapi-webhook").digest()


def webhook_token(secret: bytes, namespace: str, salt: str) -> str:
    """Return the webhook token every worker derives alike; a new ``salt`` rotates it."""
    mac = hmac.new(secret, f"{namespace}\n{salt}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def worker_name() -> str:
    """Return a fresh worker id: one per process incarnation, never reused."""
    return secrets.token_hex(8)


def check_name(what: str, value: str) -> str:
    """Return ``value`` if it can be part of a key, else raise ValueError naming ``what``."""
    if not _NAME.fullmatch(value):
        raise ValueError(f"{what} must be 1-64 of A-Z a-z 0-9 _ . -, got {value!r}")
    return value


def redact_url(url: str) -> str:
    """Return ``url`` with any password (and a user name used as one) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable Redis URL>"
    if password is None and parts.username is None:
        return url
    user = parts.username or ""
    # redis://secret@host puts the password where the user name goes (Redis < 6 had no users).
    shown_user = user if password is not None else ""
    netloc = f"{shown_user}:***@{host}" if password is not None or user else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def scrub(text: str, url: str) -> str:
    """Return ``text`` with the URL's password (if any) cut out, for error messages from redis."""
    try:
        parts = urlsplit(url)
        password = parts.password if parts.password is not None else parts.username
    except ValueError:
        return text
    if password:
        text = text.replace(password, "***")
    return text


class Keys:
    """Build every key of one namespace and account; all share one hash tag (one cluster slot)."""

    __slots__ = ("prefix",)

    def __init__(self, namespace: str, account: str) -> None:
        check_name("namespace", namespace)
        self.prefix = f"ttapi:{{{namespace}.{account}}}:"

    def __call__(self, *parts: str) -> str:
        """Return the key ``prefix + parts`` joined by ``:``."""
        return self.prefix + ":".join(parts)

    @property
    def clock(self) -> str:
        """Return the key every script reads its clock offset from (absent outside tests)."""
        return self("clock-offset")
