"""Broker credentials encrypted at rest with `cryptography`'s MultiFernet.

Keys come from `settings.FIELD_ENCRYPTION_KEYS`, newest first: the first encrypts, every key
decrypts, so a key can be rotated without downtime (put the new key first, run
`manage.py rotate_credentials`, then drop the old key). A Fernet token also authenticates its
content: a tampered or foreign token fails to decrypt instead of yielding garbage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class CredentialsUnreadable(Exception):
    """Stored credentials cannot be decrypted with the configured keys."""


@lru_cache(maxsize=4)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _cipher() -> MultiFernet:
    return _multi_fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_credentials(values: Mapping[str, str]) -> str:
    """A token holding ``values`` (a flat mapping of strings), encrypted with the newest key."""
    return _cipher().encrypt(json.dumps(dict(values), sort_keys=True).encode()).decode()


def decrypt_credentials(token: str) -> dict[str, str]:
    """The mapping in ``token``; {} for an empty token. `CredentialsUnreadable` when no key fits."""
    if not token:
        return {}
    try:
        return json.loads(_cipher().decrypt(token.encode()))
    except InvalidToken:
        raise CredentialsUnreadable(
            "the stored broker credentials cannot be decrypted with FIELD_ENCRYPTION_KEYS (was the key that "
            "encrypted them removed before `manage.py rotate_credentials` ran?); enter the credentials again"
        ) from None


def rotate_token(token: str) -> str:
    """``token`` re-encrypted with the newest key (unchanged content)."""
    if not token:
        return token
    try:
        return _cipher().rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialsUnreadable("a stored token cannot be decrypted with any of FIELD_ENCRYPTION_KEYS") from None
