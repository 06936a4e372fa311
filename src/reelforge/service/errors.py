"""API errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

Routes and the layers under them raise `ApiError`; one handler in app.py writes it. The SDK picks
its exception class from the status code, so the status is what must be right.
"""
from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid_param(param: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def unauthorized(message: str, code: str = "invalid_api_key") -> ApiError:
    return ApiError(401, message, code=code, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiError:
    return ApiError(403, message, type="permission_error", code="forbidden")


def not_found(video_id: str) -> ApiError:
    return ApiError(404, f"no video with id {video_id!r}", param="video_id", code="not_found")


def not_ready(message: str) -> ApiError:
    return ApiError(409, message, code="video_not_ready")


def too_large(param: str, size: int, limit: int) -> ApiError:
    return ApiError(413, f"{param} is {size} bytes; at most {limit} bytes are allowed", param=param,
                    code="too_large")


def too_many(message: str, retry_after: int, code: str) -> ApiError:
    return ApiError(429, message, type="rate_limit_error", code=code,
                    headers={"Retry-After": str(max(1, retry_after))})


def conflict(message: str, code: str) -> ApiError:
    """The request is well formed but the object is not in a state that allows it."""
    return ApiError(409, message, code=code)
