"""Domain errors. Adapters translate library errors into these; the handler maps each to HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class FlagServiceError(Exception):
    """Base of every domain error; `key` names the flag involved, if any."""

    def __init__(self, detail: str, *, key: str | None = None, outcome: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.key = key
        self.outcome = outcome  # for a read: where the answer came from (X-Cache)


class ParseError(FlagServiceError):
    """A body that is not UTF-8, not JSON or not a JSON object, or a bad query parameter."""


class InvalidKeyError(FlagServiceError):
    """A flag key that breaks the key rule."""


class InvalidFlagError(FlagServiceError):
    """A definition that breaks CONTRACT.md section 3."""


class FlagNotFoundError(FlagServiceError):
    """No such flag."""


class VersionConflictError(FlagServiceError):
    """`If-Match` does not match the current version."""


class UnauthorizedError(FlagServiceError):
    """Credentials missing."""


class ForbiddenError(FlagServiceError):
    """Credentials wrong or not allowed."""


class PayloadTooLargeError(FlagServiceError):
    """A body over the size limit."""


class StoreUnavailableError(FlagServiceError):
    """The answer needs a store that is down."""


class GeneralError(FlagServiceError):
    """Anything else, where the answer must still name the flag (OFREP single evaluation); never details."""


class CacheUnavailableError(Exception):
    """Redis failed, timed out, or its breaker is open (internal: callers fall back, users never see it)."""


class InvalidContextError(FlagServiceError):
    """OFREP: `context` missing or not an object, or a `targetingKey` that is not a string."""


class TargetingKeyMissingError(FlagServiceError):
    """OFREP: a split needs a targetingKey and the context has none."""


@contextmanager
def about_flag(key: str) -> Iterator[None]:
    """Every error raised in the block names `key` (OFREP providers read it in every error body); an
    unexpected one is logged by the caller's handler and becomes GeneralError."""
    try:
        yield
    except FlagServiceError as exc:
        exc.key = exc.key or key
        raise
    except Exception as exc:
        raise GeneralError("internal error", key=key) from exc
