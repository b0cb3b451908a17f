"""What counts as a failing engine step, and how it is described to the analyst who mends it.

Decision: only these errors stop an instance with a message (its last good state kept, `retry`
runs the step again); anything else is a bug and propagates, so the transaction rolls back.
"""

from __future__ import annotations

import re

from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine.errors import ApprovalError, ExpressionError

STEP_ERRORS = (
    SpiffWorkflowException,
    ExpressionError,
    RecursionError,
    ArithmeticError,
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    LookupError,
)

# SpiffWorkflow's wrapper for a failed condition; the expression is worth showing, the rest not.
_FAILED_EXPRESSION = re.compile(r"Error evaluating expression '(.*)'", re.DOTALL)


def describe(err: Exception) -> str:
    """What failed, where, and why, in words an analyst can act on (the cause, not the wrapper)."""
    if isinstance(err, RecursionError):
        return "the process nests call activities too deeply"
    cause = _approval_cause(err)
    text = str(err) if cause is None else str(cause)
    expression = _FAILED_EXPRESSION.match(str(err))
    if cause is not None and expression:
        reason = cause.reason if isinstance(cause, ExpressionError) else text  # one line only
        text = f"the expression `{expression.group(1)}` failed: {reason}"
    task = getattr(err, "task", None)
    if task is not None:
        spec = task.task_spec
        name = getattr(spec, "bpmn_name", None)
        text = f"{spec.name} ({name}): {text}" if name else f"{spec.name}: {text}"
    return text[:2000]


def _approval_cause(err: BaseException) -> ApprovalError | None:
    """Our own error under SpiffWorkflow's wrapper, which keeps it only as the context."""
    for _ in range(10):  # a bounded walk: exception chains may loop
        if err is None or isinstance(err, ApprovalError):
            return err
        err = err.__cause__ or err.__context__
    return None
