"""Errors the store's operations raise; the API maps each to an HTTP status and a Cloudflare error code.

    StoreError(message, code)
    ├── NotFound      -> 404
    ├── Invalid       -> 400  (validation: bad PEM, bad value, limit reached...)
    ├── Forbidden     -> 403  (a token outside its scope or permissions)
    ├── Conflict      -> 409  (a concurrent write won a race this one could not settle; retry)
    └── StoreUnavailable -> 503 (the database refused, hung or timed out; nothing was written)

Messages are shown to API users as they are: they never contain key material.
"""

from __future__ import annotations

__all__ = ["Conflict", "Forbidden", "Invalid", "NotFound", "StoreError", "StoreUnavailable"]


class StoreError(Exception):
    http_status = 500

    def __init__(self, message: str, code: int = 1000) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class NotFound(StoreError):
    http_status = 404


class Invalid(StoreError):
    http_status = 400


class Forbidden(StoreError):
    http_status = 403


class Conflict(StoreError):
    http_status = 409


class StoreUnavailable(StoreError):
    """The database could not be used in time; the transaction was rolled back (or never began)."""

    http_status = 503
