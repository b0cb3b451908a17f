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


def uses_namespace(root: etree._Element, namespace: str) -> bool:
    if namespace in root.nsmap.values():
        return True
    return any(
        etree.QName(el).namespace == namespace or any(namespace in a for a in el.attrib)
        for el in root.iter()
        if isinstance(el.tag, str)
    )


def detect(root: etree._Element) -> Dialect | str:
    """The dialect of a BPMN file, or a sentence saying why it cannot be run (yet)."""
    if uses_namespace(root, CAMUNDA_NS) and not _only_declares(root, CAMUNDA_NS):
        return (
            "this diagram is in the Camunda 7 dialect, which is not supported yet; draw it in "
            "bpmn.io or SpiffArena's modeler"
        )
    return SPIFF if SPIFF_NS in root.nsmap.values() else PLAIN


def _only_declares(root: etree._Element, namespace: str) -> bool:
    # Camunda Modeler declares its namespace on every file; only its attributes make it Camunda.
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if etree.QName(el).namespace == namespace:
            return False
        if any(attr.startswith("{" + namespace + "}") for attr in el.attrib):
            return False
    return True
