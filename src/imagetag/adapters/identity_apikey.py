"""API key secrets: random, shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "itk_"


class Sha256KeyHasher:
    """Keys carry 256 bits of randomness, so one SHA-256 is enough to store them.

    A slow password hash (bcrypt, argon2) defends low-entropy secrets against
    guessing; a random 32-byte key cannot be guessed, and a fast hash keeps
    authentication off the request's critical path.
    """

    def new_secret(self) -> str:
        return KEY_PREFIX + secrets.token_urlsafe(32)

    def hash(self, secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()
