"""Which modeler drew a diagram, and how its forms, groups and service names are read.

Decision: one seam. `detect()` looks at a parsed file once; everything dialect-specific (parser
class, where a user task names its form, where a service task names its operator) is answered
by the `Dialect` it returns, so a new dialect is one new object here.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from engine.spiff import ApprovalParser

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DMN_NAMESPACES = (
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
    "https://www.omg.org/spec/DMN/20230324/MODEL/",
)
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
# Process attributes Camunda Modeler writes on every diagram; they change nothing when run here.
CAMUNDA_METADATA = frozenset({"historyTimeToLive", "versionTag", "isStartableInTasklist"})

#: A lane with this name (or 申请人) belongs to whoever started the instance.
APPLICANT_LANE = "applicant"
APPLICANT_ALIASES = frozenset({"applicant", "申请人", "initiator"})


@dataclass(frozen=True)
class FormRef:
    schema: str | None
    ui_schema: str | None = None


@dataclass(frozen=True)
class Dialect:
    name: str
    parser_class: type

    def form_of(self, task_spec) -> FormRef:
        props = (getattr(task_spec, "extensions", None) or {}).get("properties", {})
        if self.name == "spiff":
            return FormRef(props.get("formJsonSchemaFilename"), props.get("formUiSchemaFilename"))
        # Plain BPMN has no form attribute: the convention is <element id>-schema.json.
        return FormRef(f"{task_spec.bpmn_id}-schema.json", None)

    def lane_of(self, task_spec) -> str | None:
        lane = getattr(task_spec, "lane", None)
        return lane.strip() if lane else None

    def operator_of(self, task_spec) -> str | None:
        return getattr(task_spec, "operation_name", None)


SPIFF = Dialect("spiff", ApprovalParser)
PLAIN = Dialect("bpmn", ApprovalParser)


def is_bpmn(root: etree._Element) -> bool:
    return etree.QName(root).namespace == BPMN_NS


def is_dmn(root: etree._Element) -> bool:
    return etree.QName(root).namespace in DMN_NAMESPACES


@dataclass(frozen=True)
class Refusal:
    """Why a diagram cannot be run, and the first element that shows it."""

    message: str
    element: etree._Element


def _first_use(root: etree._Element, namespace: str) -> tuple[etree._Element, str] | None:
    """The first element in `namespace` or carrying one of its attributes, with that name."""
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if etree.QName(el).namespace == namespace:
            return el, etree.QName(el).localname
        for attr in el.attrib:
            name = etree.QName(attr).localname
            if attr.startswith("{" + namespace + "}") and name not in CAMUNDA_METADATA:
                return el, name
    return None


def detect(root: etree._Element) -> Dialect | Refusal:
    """The dialect of a BPMN file, or why it cannot be run (yet).

    Camunda Modeler declares its namespace on every file; only its elements and attributes make
    a diagram Camunda's.
    """
    camunda = _first_use(root, CAMUNDA_NS)
    if camunda is not None:
        el, name = camunda
        return Refusal(
            f"this diagram uses the Camunda 7 dialect (`camunda:{name}` on line {el.sourceline}),"
            " which is not supported yet; draw it in bpmn.io or SpiffArena's modeler",
            el,
        )
    return SPIFF if SPIFF_NS in root.nsmap.values() else PLAIN
