"""Field encryption for identifiers we must keep but never show (national IDs)."""

from __future__ import annotations

import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"yilian-field-key:" + secret.encode()).digest()


def encrypt(secret: str, plaintext: str) -> bytes:
    """AES-256-GCM with a random nonce, prefixed to the ciphertext."""
    nonce = os.urandom(12)
    return nonce + AESGCM(_key(secret)).encrypt(nonce, plaintext.encode(), None)


def decrypt(secret: str, blob: bytes) -> str:
    """Inverse of :func:`encrypt`."""
    return AESGCM(_key(secret)).decrypt(blob[:12], blob[12:], None).decode()


def mask_national_id(value: str) -> str:
    """Keep the region code and the last four characters: ``440902**********123X``."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:]
