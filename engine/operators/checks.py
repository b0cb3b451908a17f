"""Generic completeness checks a pre-check step can run before anybody looks at an application."""

from __future__ import annotations

from typing import Any

from engine.operators import CallInfo, OperatorFailed, operator


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


@operator("checks.required_fields")
def required_fields(params: dict[str, Any], call: CallInfo) -> dict[str, Any]:
    """`record` (dict) must have a non-blank value for every name in `required` (list)."""
    record, required = params.get("record"), params.get("required")
    if not isinstance(record, dict) or not isinstance(required, list):
        raise OperatorFailed(
            "checks.required_fields needs `record` (a dict) and `required` (a list)", retry=False
        )
    missing = [name for name in required if _blank(record.get(name))]
    return {"complete": not missing, "missing": missing}
