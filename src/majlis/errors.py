"""Errors that carry an HTTP status and a reason a person can read. Imports nothing of ours."""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "MajlisError",
    "NotFound",
    "Overloaded",
    "PayloadTooLarge",
    "RateLimited",
    "Unauthorized",
    "UnsupportedMediaType",
]


class MajlisError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code

    def body(self) -> dict[str, object]:
        return {"error": self.code, "reason": self.reason}


class BadRequest(MajlisError):
    status = 400
    code = "bad_request"


class Unauthorized(MajlisError):
    status = 401
    code = "unauthorized"


class Forbidden(MajlisError):
    status = 403
    code = "forbidden"


class NotFound(MajlisError):
    status = 404
    code = "not_found"


class Conflict(MajlisError):
    status = 409
    code = "conflict"


class PayloadTooLarge(MajlisError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(MajlisError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(MajlisError):
    """429: the caller is over its own limit. retry_after_ms says when to come back."""

    status = 429
    code = "rate_limited"

    def __init__(self, reason: str, retry_after_ms: int, *, code: str | None = None) -> None:
        super().__init__(reason, code=code)
        self.retry_after_ms = max(1, retry_after_ms)

    def body(self) -> dict[str, object]:
        return {**super().body(), "retry_after_ms": self.retry_after_ms}


class Overloaded(RateLimited):
    """503: the server as a whole sheds load."""

    status = 503
    code = "overloaded"
