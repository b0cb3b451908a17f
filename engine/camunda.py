"""Reading the Camunda 7 dialect: `camunda:` attributes and elements into the engine's own specs.

Decision: Camunda's settings are read into the same shapes the SpiffArena dialect produces —
a form file in `properties`, input/output mappings as pre- and post-scripts, an external topic
as the service task's operator — plus a `camunda` dictionary for what has no spiff equivalent
(assignee, candidates, due date, initiator, decision result mapping). Every JUEL text is turned
into a sandbox expression by `engine.juel` while reading; validation (`camunda_checks`) has
already refused what cannot be read, so reading never fails on a deployed diagram. The parser is
a superset of `ApprovalParser`: a bundle mixing Camunda and other diagrams parses with it.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.spiff.parser.task_spec import ScriptTaskParser, SpiffTaskParser, UserTaskParser
from SpiffWorkflow.spiff.specs.defaults import ManualTask, NoneTask, ScriptTask

from engine import camunda_forms, juel, task_specs
from engine.spiff import ApprovalParser, DecisionTaskParser, OperatorServiceTaskParser
from engine.task_specs import CamundaUserTask, DecisionTask, ExternalTopicTask, PassThroughTask

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
NS = {"camunda": CAMUNDA_NS, "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
ASSIGNMENT = {
    "assignee": "assignee",
    "candidateUsers": "candidate_users",
    "candidateGroups": "candidate_groups",
    "dueDate": "due",
}
DECISION = {"resultVariable": "result_variable", "mapDecisionResult": "map_result"}
# Process attributes Camunda Modeler writes on every diagram; they change nothing when run here.
METADATA = frozenset(
    {"historyTimeToLive", "versionTag", "isStartableInTasklist", "diagramRelationId"}
)


def attr(el: etree._Element, name: str) -> str | None:
    return el.get(f"{{{CAMUNDA_NS}}}{name}")


def _is_el(el) -> bool:
    return isinstance(el.tag, str)


def first_use(
    root: etree._Element, namespace: str = CAMUNDA_NS, harmless: frozenset[str] = METADATA
) -> tuple[etree._Element, str] | None:
    """The first element in `namespace`, or carrying one of its attributes, with that name."""
    for el in root.iter():
        if not _is_el(el):
            continue
        name = etree.QName(el).localname
        if etree.QName(el).namespace == namespace and name not in harmless:
            return el, name
        for key in el.attrib:
            name = etree.QName(key).localname
            if key.startswith("{" + namespace + "}") and name not in harmless:
                return el, name
    return None


def parameter_value(param: etree._Element) -> str:
    """An input/output parameter's value as a sandbox expression (text, list or map)."""
    nested = [c for c in param if _is_el(c)]
    if not nested:
        text = param.text or ""
        return juel.value(text) if text.strip() else "None"
    kind = etree.QName(nested[0]).localname
    if kind == "list":
        items = [parameter_value(v) for v in nested[0] if _is_el(v)]
        return f"[{', '.join(items)}]"
    if kind == "map":
        entries = [f"{e.get('key')!r}: {parameter_value(e)}" for e in nested[0] if _is_el(e)]
        return f"{{{', '.join(entries)}}}"
    raise ValueError(f"a <camunda:{kind}> value is not supported")


def mappings(node: etree._Element) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(inputs, outputs) of a task: `camunda:inputOutput` and a call activity's `camunda:in/out`,
    each as (variable, sandbox expression)."""
    inputs, outputs = [], []
    for io in node.iterfind("bpmn:extensionElements/camunda:inputOutput", NS):
        for param in io.iterfind("camunda:inputParameter", NS):
            inputs.append((param.get("name"), parameter_value(param)))
        for param in io.iterfind("camunda:outputParameter", NS):
            outputs.append((param.get("name"), parameter_value(param)))
    for tag, found in (("in", inputs), ("out", outputs)):
        for el in node.iterfind(f"bpmn:extensionElements/camunda:{tag}", NS):
            if el.get("variables") or not el.get("target"):
                continue  # `variables="all"`: every variable goes across, as it always does here
            source = el.get("sourceExpression")
            found.append((el.get("target"), juel.value(source) if source else el.get("source")))
    return inputs, outputs


def script(assignments: list[tuple[str, str]]) -> str | None:
    return "\n".join(f"{name} = {value}" for name, value in assignments) or None


def _join(*scripts: str | None) -> str | None:
    return "\n".join(s for s in scripts if s) or None


class CamundaReading(SpiffTaskParser):
    """Mixed into every task parser: spiff extensions plus what the `camunda:` settings say."""

    def parse_extensions(self, node=None):
        node = self.node if node is None else node
        extensions = SpiffTaskParser._parse_extensions(node)
        inputs, outputs = mappings(node)
        settings: dict[str, Any] = {}
        if attr(node, "type") == "external":
            settings["topic"] = attr(node, "topic")
            settings["outputs"] = [list(o) for o in outputs]
            extensions["serviceTaskOperator"] = {
                "name": attr(node, "topic"),
                "parameters": {n: {"value": v, "type": "any"} for n, v in inputs},
                "resultVariable": None,
            }
        else:
            extensions["preScript"] = _join(script(inputs), extensions.get("preScript"))
            extensions["postScript"] = _join(extensions.get("postScript"), script(outputs))
        for name, key in ASSIGNMENT.items():
            if attr(node, name):
                settings[key] = juel.value(attr(node, name))
        if etree.QName(node).localname == "userTask":
            self._user_task(node, extensions, settings)
        for name, key in DECISION.items():
            if attr(node, name):
                settings[key] = attr(node, name)
        if attr(node, "initiator"):
            settings["initiator"] = attr(node, "initiator")
        if settings:
            extensions["camunda"] = settings
        return extensions

    def _user_task(self, node, extensions: dict, settings: dict) -> None:
        form = None
        if attr(node, "formKey"):
            form = camunda_forms.form_file(attr(node, "formKey"))
        elif camunda_forms.has_fields(node):
            form = camunda_forms.generated_file(node.get("id"))
        if form:
            extensions.setdefault("properties", {})["formJsonSchemaFilename"] = form
        process = self.process_parser.node
        starters = process.xpath(".//bpmn:startEvent/@camunda:initiator", namespaces=NS)
        if starters:
            settings["initiator"] = str(starters[0])


class _UserTaskParser(CamundaReading, UserTaskParser):
    def create_task(self):
        extensions = self.parse_extensions()
        return CamundaUserTask(
            self.spec,
            self.bpmn_id,
            variable=extensions.get("variableName"),
            prescript=extensions.get("preScript"),
            postscript=extensions.get("postScript"),
            **self.bpmn_attributes,
        )


class _ServiceTaskParser(CamundaReading, OperatorServiceTaskParser):
    def create_task(self):
        if attr(self.node, "type") == "external":
            self.spec_class = ExternalTopicTask
        return super().create_task()


class _PlainTaskParser(CamundaReading, SpiffTaskParser):
    """Camunda passes plain and manual tasks at once; other modelers' wait for a person."""

    def create_task(self):
        if self.filename in self.process_parser.parser.camunda_files:
            self.spec_class = PassThroughTask
        return super().create_task()


class _DecisionTaskParser(CamundaReading, DecisionTaskParser):
    pass


class _ScriptTaskParser(CamundaReading, ScriptTaskParser):
    def create_task(self):
        task = super().create_task()
        extensions = self.parse_extensions()
        task.prescript, task.postscript = extensions["preScript"], extensions["postScript"]
        return task


def _reading(parser_class: type) -> type:
    return type(f"Camunda{parser_class.__name__}", (CamundaReading, parser_class), {})


class CamundaParser(ApprovalParser):
    """Camunda 7 diagrams (and any other dialect in the same bundle)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.camunda_files: set[str | None] = set()

    def add_bpmn_xml(self, bpmn, filename=None):
        if first_use(bpmn) is not None:
            self.camunda_files.add(filename)
        super().add_bpmn_xml(bpmn, filename)

    OVERRIDE_PARSER_CLASSES = {
        **{
            tag: (_reading(parser), spec)
            for tag, (parser, spec) in ApprovalParser.OVERRIDE_PARSER_CLASSES.items()
        },
        full_tag("userTask"): (_UserTaskParser, CamundaUserTask),
        full_tag("serviceTask"): (_ServiceTaskParser, task_specs.DeferredServiceTask),
        full_tag("businessRuleTask"): (_DecisionTaskParser, DecisionTask),
        full_tag("scriptTask"): (_ScriptTaskParser, ScriptTask),
        full_tag("task"): (_PlainTaskParser, NoneTask),
        full_tag("manualTask"): (_PlainTaskParser, ManualTask),
    }
