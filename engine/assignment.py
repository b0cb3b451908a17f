"""Who gets a user task, and by when, when the diagram says so on the task itself (Camunda's
`assignee`, `candidateUsers`, `candidateGroups` and `dueDate`), rather than by its lane.

Decision: the settings are expressions, so they are evaluated inside the engine step that makes
the task ready — a failure stops the instance with a message, like any failing expression — and
the outcome is recorded in the task; the inbox row (`inbox_fields`) only copies it. The person
who started the instance is known to the host, not the engine: until the host passes the name
(`spiff.new_workflow(..., initiator=)`), a variable named by `camunda:initiator` stands for them
as `STARTER`, which the inbox row replaces by the starter's name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine import clock
from engine.errors import ExpressionError

ASSIGNMENT_KEY = "assignment"
STARTER = "\x00starter"
FIELDS = ("assignee", "candidate_users", "candidate_groups", "due")


def evaluate(task, settings: dict[str, Any]) -> dict[str, Any]:
    """The task's assignee, candidate users and groups and due time, from its settings'
    expressions evaluated against the task data."""
    names = dict(task.data)
    initiator = settings.get("initiator")
    if initiator and initiator not in names:
        names[initiator] = STARTER
    environment = task.workflow.script_engine.environment
    values = {}
    for field in FIELDS:
        expression = settings.get(field)
        try:
            values[field] = environment.evaluate(expression, names) if expression else None
        except ExpressionError as err:
            raise ExpressionError(f"the {field.replace('_', ' ')}: {err.reason}") from None
    assignee = _text(values["assignee"], "assignee")
    recorded = {
        "assignee": assignee,
        "users": _names(values["candidate_users"], "candidate users"),
        "groups": _names(values["candidate_groups"], "candidate groups"),
        "due": due(values["due"]),
    }
    if not (assignee or recorded["groups"] or len(recorded["users"]) == 1 or task.task_spec.lane):
        found = ", ".join(recorded["users"]) or "nobody"
        raise ExpressionError(
            f"nobody can work on this task (assignee, candidate users and candidate groups give "
            f"{found}); one candidate user or a candidate group is needed"
        )
    return recorded


def _text(value: Any, what: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ExpressionError(f"the {what} must be a user name, not {value!r}")
    return value.strip()


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ExpressionError(f"the {what} must be names, as text or a list, not {value!r}")
    return [i.strip() for i in items if i.strip()]


def due(value: Any) -> str | None:
    """An absolute due time (ISO 8601, UTC) from a date, a date and time, or a duration."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ExpressionError(f"the due date must be an ISO 8601 text, not {value!r}")
    text = value.strip()
    try:
        if text.startswith("P"):
            now = clock.now()
            parsed = TimerEventDefinition.parse_iso_duration(text)
            moment = now + TimerEventDefinition.get_timedelta_from_start(parsed, now)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, TypeError, AttributeError):
        raise ExpressionError(
            f"the due date `{text}` is not an ISO 8601 date, date and time, or duration"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def inbox_fields(meta, task, started_by: str) -> tuple[str | None, str | None, datetime | None]:
    """(group key, assignee, due time) of the inbox row for a task that just became ready."""
    group_key = meta.group_key if meta else None
    recorded = task.internal_data.get(ASSIGNMENT_KEY)
    if not recorded:
        return group_key, None if group_key else started_by, None
    assignee = recorded["assignee"]
    users = [started_by if u == STARTER else u for u in recorded["users"]]
    if group_key is None and recorded["groups"]:  # computed groups: their value is the key
        group_key = recorded["groups"][0]
    if assignee is None and len(users) == 1:
        assignee = users[0]
    if assignee == STARTER:
        assignee = started_by
    if assignee is None and group_key is None:
        assignee = started_by  # an applicant's lane: the existing convention
    due = datetime.fromisoformat(recorded["due"]) if recorded["due"] else None
    return group_key, assignee, due
