"""API keys: random, shown once, stored only as a hash.

A key carries 256 random bits, so a plain SHA-256 is enough: slow password hashes defend guessable
secrets, and they would cost every request milliseconds. The hash is the lookup index.
"""
from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "rf-"
SHOWN_PREFIX_CHARS = 10  # "rf-" and 7 characters: enough to tell keys apart in `keys list`


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def shown_prefix(key: str) -> str:
    return key[:SHOWN_PREFIX_CHARS]
