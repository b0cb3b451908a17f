"""Checks across the files of a bundle: what call activities and business rule tasks name.

Decision: these run on the XML before SpiffWorkflow parses anything, so a call to a missing
process, a process that calls itself (it would run forever) or a missing decision is reported on
the calling element's line, instead of as SpiffWorkflow's "process was not found" or "No DMN
Diagram available".
"""

from __future__ import annotations

from lxml import etree

from engine.diagram_checks import NS, label
from engine.dialects import CAMUNDA_NS
from engine.errors import Problem


def check_calls(trees: dict[str, etree._Element]) -> list[Problem]:
    """Call activities must name an executable process of the bundle and never lead back."""
    processes = {
        p.get("id"): (filename, p)
        for filename, root in trees.items()
        for p in root.iterfind("bpmn:process", NS)
    }
    calls: dict[str, list[tuple[etree._Element, str]]] = {}
    problems = []
    for pid, (filename, process) in processes.items():
        for call in process.iterfind(".//bpmn:callActivity", NS):
            target = (call.get("calledElement") or "").strip()
            message = _call_problem(call, target, processes)
            if message:
                problems.append(Problem(filename, call.sourceline, message, call.get("id")))
            else:
                calls.setdefault(pid, []).append((call, target))
    for pid, edges in calls.items():
        for call, target in edges:
            cycle = _path(target, pid, calls)
            if cycle is None:
                continue
            message = f"call activity {label(call)} calls `{target}`, " + (
                "its own process: a process may not call itself"
                if target == pid
                else f"which calls back ({' → '.join([pid, *cycle])}): recursion is not allowed"
            )
            problems.append(Problem(processes[pid][0], call.sourceline, message, call.get("id")))
    return problems


def _call_problem(call: etree._Element, target: str, processes: dict) -> str | None:
    if not target:
        return f"call activity {label(call)} names no process to call: set its called element"
    if target not in processes:
        known = ", ".join(f"`{p}`" for p in sorted(processes))
        return (
            f"call activity {label(call)} calls `{target}`, which is not a process of this "
            f"bundle (processes: {known})"
        )
    if processes[target][1].get("isExecutable") != "true":
        return f"call activity {label(call)} calls `{target}`, which is not executable"
    return None


def _path(start: str, goal: str, calls: dict) -> list[str] | None:
    """The processes from `start` to `goal` along calls (breadth first), or None."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if node == goal:
            return paths[node]
        for _, target in calls.get(node, ()):
            if target not in paths:
                paths[target] = paths[node] + [target]
                queue.append(target)
    return None


def check_decisions(trees: dict[str, etree._Element], decisions: set[str]) -> list[Problem]:
    """Business rule tasks must name a decision of one of the bundle's .dmn files."""
    problems = []
    known = ", ".join(f"`{d}`" for d in sorted(decisions)) or "none"
    for filename, root in trees.items():
        for task in root.iterfind(".//bpmn:businessRuleTask", NS):
            ref = (task.findtext(".//spiffworkflow:calledDecisionId", "", NS) or "").strip()
            ref = (task.get(f"{{{CAMUNDA_NS}}}decisionRef") or ref).strip()
            if not ref:
                message = (
                    f"business rule task {label(task)} names no decision: set its called "
                    "decision id to the id of a decision in a .dmn file"
                )
            elif ref not in decisions:
                message = (
                    f"business rule task {label(task)} uses the decision `{ref}`, which is in "
                    f"none of the bundle's .dmn files (decisions: {known})"
                )
            else:
                continue
            problems.append(Problem(filename, task.sourceline, message, task.get("id")))
    return problems
