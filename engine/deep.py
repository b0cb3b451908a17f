"""Running SpiffWorkflow's recursive code on a deep stack when a diagram is long.

Decision: SpiffWorkflow recurses once per task along a chain — when it parses a diagram (about
two frames a task), and when it predicts the tasks ahead of a new or advanced instance (about
one) — so a chain of some hundreds of tasks exceeds Python's recursion limit. Work on a big
diagram therefore runs in its own thread with a large stack and a recursion limit sized to the
diagram, one at a time because the limit is process-wide; work on an ordinary diagram runs
inline, costing nothing.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
FRAMES_PER_ELEMENT = 4  # measured: ~2 frames per chained task when parsing; 1 when predicting
MAX_RECURSION = 60_000  # ≈ 15,000 chained tasks; beyond, a clear problem rather than a risk
STACK_BYTES = 64 * 1024 * 1024  # address space only; 30,000 chained tasks used under 2 MiB
INLINE_TASKS = 300  # below this many task specs, prediction stays far from the default limit
_ONE_AT_A_TIME = threading.Lock()
_WORKER = "deep-engine-work"


def run_deep(work: Callable[[], T], depth: int) -> T:
    """`work()` in a fresh thread with a big stack and a recursion limit of at least `depth`."""
    if threading.current_thread().name == _WORKER:
        return work()  # already on a deep stack (engine steps refresh timers, for instance)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as err:  # handed to the caller's thread, re-raised there
            outcome["error"] = err

    with _ONE_AT_A_TIME:
        previous_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(previous_limit, min(depth, MAX_RECURSION)))
        try:
            previous_stack = threading.stack_size(STACK_BYTES)
            try:
                worker = threading.Thread(target=target, name=_WORKER)
                worker.start()  # the stack size applies to threads started while it is set
            finally:
                threading.stack_size(previous_stack)
            worker.join()
        finally:
            sys.setrecursionlimit(previous_limit)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def task_count(specs: dict[str, Any]) -> int:
    """How many task specs a bundle's processes hold together (what prediction may walk)."""
    return sum(len(spec.task_specs) for spec in specs.values())


def run_for(specs: dict[str, Any], work: Callable[[], T]) -> T:
    """`work()` inline for an ordinary diagram, on a deep stack for a long one."""
    tasks = task_count(specs)
    if tasks < INLINE_TASKS:
        return work()
    return run_deep(work, 1_000 + FRAMES_PER_ELEMENT * tasks)
