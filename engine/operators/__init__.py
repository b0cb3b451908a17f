"""Service operators, registered by name: what a diagram's service task may call.

Decision: an operator is a plain function `(params, call) -> dict` run by a worker outside the
engine step; it may return `WAIT` to say the answer comes later (a callback completes the call).
Diagrams can only name operators registered here, and validation refuses any other name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from engine.config import Settings


@dataclass(frozen=True)
class CallInfo:
    """What an operator may know about the call it serves."""

    call_id: int
    instance_id: int
    element_id: str
    attempt: int
    settings: Settings
    bundle_key: str = ""
    #: The application number, once issued, and who started the application.
    reference: str | None = None
    started_by: str = ""
    #: The deployed data files of the instance's version, by name (`scorecard.json`).
    data: Mapping[str, str] = field(default_factory=dict)
    #: For operators that keep records (notifications) or read reference data (blacklist);
    #: each use is its own short transaction, never the instance's.
    session_factory: sessionmaker[Session] | None = None


class _Wait:
    def __repr__(self) -> str:
        return "WAIT"


#: Returned by an operator whose answer arrives later through `runtime.complete_service_call`.
WAIT = _Wait()

Operator = Callable[[dict[str, Any], CallInfo], "dict[str, Any] | _Wait"]
_REGISTRY: dict[str, Operator] = {}


class OperatorFailed(Exception):
    """An operator could not do its work; `retry` says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool = True):
        super().__init__(message)
        self.retry = retry


def operator(name: str) -> Callable[[Operator], Operator]:
    """Register a function as the operator `name`."""

    def register(fn: Operator) -> Operator:
        _REGISTRY[name] = fn
        return fn

    return register


def get(name: str) -> Operator | None:
    return _REGISTRY.get(name)


def names() -> set[str]:
    return set(_REGISTRY)


def _load_builtin() -> None:
    from engine.operators import checks, credit_bureau, notify, screening  # noqa: F401


_load_builtin()
