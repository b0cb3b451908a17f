"""Checks on a Camunda 7 diagram: what of it runs here, what does not and why; JUEL translated.

Decisions: (1) every `camunda:` attribute and element is named here as executed (forms,
assignment, external topics, mappings, decisions, initiator, multi-instance collections),
harmless (job-executor flags, priorities, extension properties: silently ignored), ignored with
a warning, or refused with what to do instead (Java classes, expressions, delegate expressions,
connectors, listeners); anything unknown is refused, since ignoring it could change what the
diagram does. (2) JUEL in the standard BPMN elements (conditions, timers, loop settings) is
replaced in place by its translation, so the generic checks and the parser see only the sandbox
language; JUEL in `camunda:` settings is translated again when read (`engine.camunda`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from lxml import etree

from engine import assignment, camunda_forms, expressions, juel
from engine.camunda import CAMUNDA_NS, NS, attr, mappings
from engine.diagram_checks import label, owner_of
from engine.errors import ExpressionError, Problem

HARMLESS = frozenset(
    {"asyncBefore", "asyncAfter", "async", "exclusive", "jobPriority", "taskPriority", "priority"}
    | {"followUpDate", "historyTimeToLive", "versionTag", "isStartableInTasklist"}
    | {"decisionRefBinding", "decisionRefVersion", "decisionRefTenantId", "calledElementBinding"}
    | {"calledElementVersion", "calledElementTenantId", "calledElementVersionTag"}
    | {"properties", "property", "formData", "formField", "validation", "constraint", "value"}
    | {"inputOutput", "inputParameter", "outputParameter", "list", "map", "entry", "in", "out"}
    | {"collection", "elementVariable", "formKey", "initiator", "assignee", "candidateUsers"}
    | {"candidateGroups", "dueDate", "type", "topic", "decisionRef", "resultVariable"}
    | {"mapDecisionResult", "variableName", "formFieldValidation", "errorMessage"}
)
WARNED = {
    "candidateStarterGroups": "who may start a process is not checked here",
    "candidateStarterUsers": "who may start a process is not checked here",
    "failedJobRetryTimeCycle": "retries follow the engine's own schedule (5 attempts, doubling)",
    "errorCodeVariable": "the error code is not stored in a variable",
    "errorMessageVariable": "the error message is not stored in a variable",
}
JAVA = "which runs Java inside Camunda; this engine runs no Java"
REFUSED = {
    "class": JAVA,
    "delegateExpression": JAVA,
    "expression": "which calls Java objects inside Camunda; this engine runs no Java",
    "connector": "which calls HTTP or SOAP through Camunda's connectors",
    "field": "which configures a Java class",
    "taskListener": "which runs code when the task changes; this engine runs no listeners",
    "executionListener": "which runs code on the way; this engine runs no listeners",
    "script": "which runs a script in a language this engine does not run",
    "formRef": "which names a Camunda Form (.form); forms here are JSON Schema",
    "formHandlerClass": JAVA,
    "resource": "which loads a script from a file; put the script in the diagram",
    "errorEventDefinition": "which maps worker errors by expression; model an error boundary "
    "event the operator's failure leads to instead",
    "variableMappingClass": JAVA,
    "variableMappingDelegateExpression": JAVA,
}
INSTEAD = "; make it an external task (Implementation: External) whose topic is an operator"
TO_EXTERNAL = frozenset({"class", "delegateExpression", "expression", "connector", "field"})
MAP_RESULTS = frozenset({"resultList", "singleResult", "singleEntry", "collectEntries"})
_STANDARD = ".//bpmn:conditionExpression|.//bpmn:condition|.//bpmn:timeDate|.//bpmn:timeDuration"
_STANDARD += "|.//bpmn:timeCycle|.//bpmn:loopCardinality|.//bpmn:completionCondition"


def _uses(root: etree._Element) -> Iterator[tuple[etree._Element, str, bool]]:
    """(element, name, is_element) for every `camunda:` element and attribute of the file."""
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if etree.QName(el).namespace == CAMUNDA_NS:
            yield el, etree.QName(el).localname, True
        for key in el.attrib:
            if key.startswith(f"{{{CAMUNDA_NS}}}"):
                yield el, etree.QName(key).localname, False


def _problem(filename: str, el: etree._Element, message: str, severity: str = "error") -> Problem:
    owner = owner_of(el)
    return Problem(filename, el.sourceline, message, owner.get("id"), severity=severity)


def check_settings(root: etree._Element, filename: str) -> list[Problem]:
    """Every `camunda:` setting is executed, harmless, warned about, or refused."""
    problems, refused = [], set()
    for el, name, is_element in _uses(root):
        if any(a in refused for a in el.iterancestors()):
            continue  # the parts of a refused setting: the setting itself was named
        what = f"`camunda:{name}`"
        owner = label(owner_of(el.getparent() if is_element else el))
        if name in REFUSED:
            instead = INSTEAD if name in TO_EXTERNAL else ""
            message = f"{owner} is in the Camunda dialect but uses {what}, {REFUSED[name]}{instead}"
            problems.append(_problem(filename, el, message))
            refused.add(el)
        elif name in WARNED:
            message = f"{owner}: {what} is ignored; {WARNED[name]}"
            problems.append(_problem(filename, el, message, "warning"))
        elif name not in HARMLESS:
            message = f"{owner} uses {what}, which this engine does not support; remove it"
            problems.append(_problem(filename, el, message))
    return problems


def translate_standard(root: etree._Element, filename: str) -> list[Problem]:
    """JUEL in conditions, timers and loop settings replaced by its translation, in place."""
    problems = []
    for node in root.xpath(_STANDARD, namespaces=NS):
        owner = owner_of(node.getparent())
        if juel.is_juel(node.text):
            try:
                node.text = juel.expression(node.text)
            except juel.JuelError as err:
                problems.append(_juel_problem(filename, node, owner, err))
    return problems + _collections(root, filename)


def _juel_problem(filename: str, node, owner, err: juel.JuelError) -> Problem:
    message = f"the expression of {label(owner)} cannot be used here: {err}"
    return Problem(filename, node.sourceline, message, owner.get("id"))


def _collections(root: etree._Element, filename: str) -> list[Problem]:
    """`camunda:collection` + `camunda:elementVariable` as BPMN's loop input and input item."""
    problems = []
    for loop in root.iterfind(".//bpmn:multiInstanceLoopCharacteristics", NS):
        collection = attr(loop, "collection")
        if not collection:
            continue
        name = collection
        if juel.is_juel(collection):
            try:
                name = juel.expression(collection)
            except juel.JuelError as err:
                problems.append(_juel_problem(filename, loop, owner_of(loop.getparent()), err))
                continue
        if not name.isidentifier():
            owner = owner_of(loop.getparent())
            message = f"the collection of {label(owner)} must be a variable, not `{collection}`"
            problems.append(Problem(filename, loop.sourceline, message, owner.get("id")))
            continue
        etree.SubElement(loop, f"{{{NS['bpmn']}}}loopDataInputRef").text = name
        variable = attr(loop, "elementVariable")
        if variable:
            item = etree.SubElement(loop, f"{{{NS['bpmn']}}}inputDataItem")
            item.set("id", variable)
            item.set("name", variable)
    return problems


def _compile(filename, el, owner, what: str, text: str, translate: bool = True) -> list[Problem]:
    """`text` (JUEL or plain text; or, untranslated, a sandbox expression) compiles."""
    try:
        expressions.check(juel.value(text) if translate else text)
    except juel.JuelError as err:
        message = f"{what} of {label(owner)} cannot be used here: {err}"
        return [Problem(filename, el.sourceline, message, owner.get("id"))]
    except ExpressionError as err:
        message = f"{what} of {label(owner)} (`{text.strip()}`): {err.reason}"
        return [Problem(filename, el.sourceline, message, owner.get("id"))]
    return []


def check_tasks(root: etree._Element, filename: str) -> list[Problem]:
    """Assignment, mappings, forms, topics, decisions and initiators of every element."""
    problems = []
    for el in root.iter():
        if not isinstance(el.tag, str) or etree.QName(el).namespace != NS["bpmn"]:
            continue
        for name in ("assignee", "candidateUsers", "candidateGroups", "dueDate"):
            if attr(el, name) is not None:
                problems += _compile(filename, el, el, f"the {name}", attr(el, name))
        problems += _due_date(el, filename)
        problems += _mappings(el, filename) + _service(el, filename) + _decision(el, filename)
        initiator = attr(el, "initiator")
        if initiator is not None and not initiator.isidentifier():
            message = f"the initiator variable of {label(el)} must be a plain name"
            problems.append(Problem(filename, el.sourceline, message, el.get("id")))
    return problems


def _due_date(el: etree._Element, filename: str) -> list[Problem]:
    """A due date written out (not computed) must be one the engine reads."""
    text = attr(el, "dueDate")
    if not text or juel.is_juel(text):
        return []
    try:
        assignment.due(text)
    except ExpressionError as err:
        return [Problem(filename, el.sourceline, f"{label(el)}: {err.reason}", el.get("id"))]
    return []


def _mappings(el: etree._Element, filename: str) -> list[Problem]:
    problems = []
    try:
        inputs, outputs = mappings(el)
    except juel.JuelError as err:
        message = f"an input/output mapping of {label(el)} cannot be used here: {err}"
        return [Problem(filename, el.sourceline, message, el.get("id"))]
    except ValueError:
        return []  # a <camunda:script> value: `check_settings` refuses it
    for name, value in inputs + outputs:
        if not (name or "").isidentifier():
            message = f"the mapping `{name}` of {label(el)} must name a plain variable"
            problems.append(Problem(filename, el.sourceline, message, el.get("id")))
        else:
            problems += _compile(filename, el, el, f"the mapping `{name}`", value, translate=False)
    return problems


def _service(el: etree._Element, filename: str) -> list[Problem]:
    kind = attr(el, "type")
    if kind is None:
        return []
    if kind != "external":
        message = f"{label(el)} has the implementation type `{kind}`{INSTEAD}"
        return [Problem(filename, el.sourceline, message, el.get("id"))]
    topic = attr(el, "topic") or ""
    if not topic.strip() or juel.is_juel(topic):
        message = f"external task {label(el)} needs a topic: the name of an operator"
        return [Problem(filename, el.sourceline, message, el.get("id"))]
    return []


def _decision(el: etree._Element, filename: str) -> list[Problem]:
    if attr(el, "decisionRef") is None:
        if attr(el, "resultVariable") is None:
            return []
        message = (
            f"{label(el)} stores its result with `camunda:resultVariable`, which only business "
            "rule tasks do here; assign the variable in the script instead"
        )
        return [Problem(filename, el.sourceline, message, el.get("id"))]
    problems = []
    variable, mapping = attr(el, "resultVariable"), attr(el, "mapDecisionResult")
    if juel.is_juel(attr(el, "decisionRef")):
        message = f"business rule task {label(el)} must name its decision, not compute it"
        problems.append(Problem(filename, el.sourceline, message, el.get("id")))
    if variable is not None and not variable.isidentifier():
        message = f"the result variable of {label(el)} must be a plain name, not `{variable}`"
        problems.append(Problem(filename, el.sourceline, message, el.get("id")))
    if mapping is not None and mapping not in MAP_RESULTS:
        known = ", ".join(sorted(MAP_RESULTS))
        message = f"{label(el)} maps its decision result as `{mapping}`; use one of {known}"
        problems.append(Problem(filename, el.sourceline, message, el.get("id")))
    if variable is None:
        message = (
            f"business rule task {label(el)} keeps no result: set a result variable, or the "
            "decision's outputs are lost"
        )
        problems.append(Problem(filename, el.sourceline, message, el.get("id"), "warning"))
    return problems


def forms(root: etree._Element, filename: str, key: str) -> tuple[dict[str, str], list[Problem]]:
    """The generated forms of the file's user tasks (path → JSON), and any form problem."""
    generated, problems = {}, []
    for task in root.iterfind(".//bpmn:userTask", NS):
        form_key = attr(task, "formKey")
        try:
            if form_key is not None:
                camunda_forms.form_file(form_key)
            elif camunda_forms.has_fields(task):
                schema = camunda_forms.schema(task)
                path = f"forms/{key}/{camunda_forms.generated_file(task.get('id'))}"
                generated[path] = json.dumps(schema, ensure_ascii=False, indent=2)
        except camunda_forms.FormError as err:
            problems.append(Problem(filename, err.element.sourceline, str(err), task.get("id")))
        except ValueError as err:
            message = f"user task {label(task)}: {err}"
            problems.append(Problem(filename, task.sourceline, message, task.get("id")))
    return generated, problems


def check(root, filename: str, key: str) -> tuple[dict[str, str], list[Problem]]:
    """The settings, tasks and forms of one Camunda file: (generated forms, problems).
    (`translate_standard` runs on every file: `${...}` is JUEL whoever drew it.)"""
    generated, problems = forms(root, filename, key)
    return generated, problems + check_settings(root, filename) + check_tasks(root, filename)
