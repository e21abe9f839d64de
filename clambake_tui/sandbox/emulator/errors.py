"""The error answers GitHub gives: a status, a message, a documentation link, maybe `errors`."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "DOCS", "validation_failed", "not_found"]

DOCS = "https://docs.github.com/rest"


class ApiError(Exception):
    """Raised by a route to answer with GitHub's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        documentation_url: str = DOCS,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.documentation_url = documentation_url
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            out["errors"] = self.errors
        out["documentation_url"] = self.documentation_url
        # GitHub sends the status as a string.
        out["status"] = str(self.status)
        return out


def not_found(doc: str = DOCS) -> ApiError:
    return ApiError(404, "Not Found", documentation_url=doc)


def validation_failed(resource: str, code: str, field: str | None = None, **extra: str) -> ApiError:
    error: dict[str, Any] = {"resource": resource, "code": code}
    if field is not None:
        error["field"] = field
    error.update(extra)
    return ApiError(422, "Validation Failed", errors=[error])
