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


# Passwords are guessable, unlike keys: scrypt makes each guess cost ~16 MiB and tens of ms, with
# a per-user salt so one table of guesses serves no second user.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024  # scrypt reads all of it; a megabyte password would be a cheap DoS


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 2**20, dklen=32)


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (hex), parameters stored so they can be raised later."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or len(password) > MAX_PASSWORD_CHARS:
        return False
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    return secrets.compare_digest(_scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p)).hex(), digest)


def generate_token() -> str:
    """A browser session's cookie value or a CSRF token: 256 random bits."""
    return secrets.token_urlsafe(32)
