"""Which modeler drew a diagram, and how its forms, groups and service names are read.

Decision: one seam. `detect()` looks at a parsed file once; everything dialect-specific (parser
class, where a user task names its form, where a service task names its operator, who a user
task goes to) is answered by the `Dialect` it returns, so a new dialect is one new object here.
Three run: SpiffArena's, plain BPMN and Camunda 7 (`engine.camunda`); Camunda 8 (Zeebe) is
told apart and refused with the first setting that shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from engine.camunda import CamundaParser, first_use
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
ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"
ZEEBE_METADATA = frozenset({"properties", "property"})
CAMUNDA_ASSIGNMENT = ("assignee", "candidate_users", "candidate_groups")

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
        if self.name in ("spiff", "camunda"):  # Camunda's form key is read into the same place
            return FormRef(props.get("formJsonSchemaFilename"), props.get("formUiSchemaFilename"))
        # Plain BPMN has no form attribute: the convention is <element id>-schema.json.
        return FormRef(f"{task_spec.bpmn_id}-schema.json", None)

    def lane_of(self, task_spec) -> str | None:
        lane = getattr(task_spec, "lane", None)
        return lane.strip() if lane else None

    def operator_of(self, task_spec) -> str | None:
        return getattr(task_spec, "operation_name", None)

    def assignment_of(self, task_spec) -> dict[str, str]:
        """Who a user task goes to by its own settings (Camunda): expressions by setting."""
        if self.name != "camunda":
            return {}
        settings = (getattr(task_spec, "extensions", None) or {}).get("camunda", {})
        return {k: settings[k] for k in CAMUNDA_ASSIGNMENT if settings.get(k)}


SPIFF = Dialect("spiff", ApprovalParser)
PLAIN = Dialect("bpmn", ApprovalParser)
CAMUNDA = Dialect("camunda", CamundaParser)


def is_bpmn(root: etree._Element) -> bool:
    return etree.QName(root).namespace == BPMN_NS


def is_dmn(root: etree._Element) -> bool:
    return etree.QName(root).namespace in DMN_NAMESPACES


@dataclass(frozen=True)
class Refusal:
    """Why a diagram cannot be run, and the first element that shows it."""

    message: str
    element: etree._Element


def detect(root: etree._Element) -> Dialect | Refusal:
    """The dialect of a BPMN file, or why it cannot be run.

    Camunda Modeler declares its namespace on every file; only its elements and attributes make
    a diagram Camunda's (what of it can run is for `camunda_checks` to say).
    """
    zeebe = first_use(root, ZEEBE_NS, ZEEBE_METADATA)
    if zeebe is not None:
        el, name = zeebe
        return Refusal(
            f"this diagram is for Camunda 8 (`zeebe:{name}` on line {el.sourceline}), whose "
            "settings this engine does not read; draw it for Camunda 7 (Camunda Modeler: "
            "Camunda Platform 7), in bpmn.io or in SpiffArena's modeler",
            el,
        )
    if first_use(root) is not None:
        return CAMUNDA
    return SPIFF if SPIFF_NS in root.nsmap.values() else PLAIN


def parser_class(found: list[Dialect]) -> type:
    """The parser for a bundle whose BPMN files are in `found` dialects (Camunda's reads all)."""
    return CamundaParser if CAMUNDA in found else ApprovalParser
