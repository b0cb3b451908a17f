"""Errors the engine raises on purpose, each with what a user needs to mend the cause.

Hosts map them once: `Invalid` → 400/422 with the field list, `Forbidden` → 403, `NotFound` → 404,
`Conflict` → 409, `ValidationFailed` → a `file:line: message` list. Anything else is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ApprovalError(Exception):
    """Base of every expected failure; `str()` is a message fit for the person who caused it."""


class NotFound(ApprovalError):
    """The thing asked for does not exist (or the caller may not know it does)."""


class Forbidden(ApprovalError):
    """The caller is known but may not do this."""


class Conflict(ApprovalError):
    """Somebody else changed the same thing first; reload and try again."""


class TaskConflict(Conflict):
    """The task was completed, claimed or changed by someone else meanwhile."""


@dataclass(frozen=True)
class FieldError:
    """One invalid field of submitted data: JSON pointer-ish path and the reason."""

    field: str
    message: str


class Invalid(ApprovalError):
    """Submitted data was refused; `errors` lists every invalid field."""

    def __init__(self, errors: list[FieldError], message: str = "the submitted data is invalid"):
        super().__init__(message + ": " + "; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Problem:
    """One finding of bundle validation, located for a business analyst."""

    file: str
    line: int | None
    message: str
    element_id: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        element = f" [{self.element_id}]" if self.element_id else ""
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        return f"{where}: {prefix}{self.message}{element}"


@dataclass
class ValidationFailed(ApprovalError):
    """A bundle has errors; nothing of it was stored."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems if p.severity == "error")


class ExpressionError(ApprovalError):
    """An expression or script was refused (at compile time) or failed (at run time)."""

    def __init__(self, message: str, *, line: int | None = None, source: str | None = None):
        super().__init__(message if line is None else f"line {line}: {message}")
        self.reason = message
        self.line = line
        self.source = source
