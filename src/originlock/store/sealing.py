"""Private keys at rest: AES-256-GCM under a master key kept outside the database.

Each sealed value is bound to the row it belongs to (associated data), so a ciphertext copied into
another row does not open.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KeySealer", "load_or_create_master_key"]

_VERSION = b"\x01"
_NONCE_BYTES = 12


class KeySealer:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("master key must be 32 bytes (AES-256)")
        self._aead = AESGCM(master_key)

    def __repr__(self) -> str:
        return "KeySealer(<master key hidden>)"

    def seal(self, plaintext: bytes, bound_to: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> bytes:
        if sealed[:1] != _VERSION:
            raise ValueError("sealed key has an unknown format version")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, bound_to.encode())
        except InvalidTag:
            raise ValueError(f"sealed key for {bound_to} does not open: wrong master key or tampered row") from None


def load_or_create_master_key(path: Path, from_env: str | None = None) -> bytes:
    """Read the 32-byte master key (hex in ``from_env`` wins), creating the file 0600 on first start."""
    if from_env:
        key = bytes.fromhex(from_env.strip())
        if len(key) != 32:
            raise ValueError("ORIGINLOCK_MASTER_KEY must be 64 hex characters")
        return key
    if path.exists():
        key = bytes.fromhex(path.read_text().strip())
        if len(key) != 32:
            raise ValueError(f"{path} does not hold a 32-byte hex master key")
        return key
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key
