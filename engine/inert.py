"""Elements with no meaning for a run: accepted, warned about, and taken out of the tree before
SpiffWorkflow parses it.

Decision: a data store documents where data lives (a core banking system, an archive); it does
nothing by itself, and SpiffWorkflow refuses every one ("has no implementation"). A data
association to anything but a data object (a process's declared input, a property) moves
nothing here either, and SpiffWorkflow fails on it. So such a diagram is not refused: the
analyst is told once per element that it is ignored, and it is removed from the parse tree
(the stored file keeps it, so the viewer still shows it).
"""

from __future__ import annotations

from lxml import etree

from engine.diagram_checks import NS, label, owner_of
from engine.errors import Problem

_STORES = ".//bpmn:dataStore|.//bpmn:dataStoreReference"
_ENDS = (("dataInputAssociation", "sourceRef"), ("dataOutputAssociation", "targetRef"))


def _links(root: etree._Element) -> list[tuple[etree._Element, str]]:
    """Every data association with the id at its far end (the data it reads or writes)."""
    found = []
    for kind, end in _ENDS:
        for link in root.iterfind(f".//bpmn:{kind}", NS):
            for ref in link.iterfind(f"bpmn:{end}", NS):
                found.append((link, (ref.text or "").strip()))
    return found


def _kinds(root: etree._Element) -> dict[str, str]:
    return {el.get("id"): etree.QName(el).localname for el in root.iter() if el.get("id")}


def check(root: etree._Element, filename: str) -> list[Problem]:
    """One warning per data store reference (or store, if none is drawn) and per association
    that leads to something other than a data object."""
    kinds = _kinds(root)
    references = root.xpath(".//bpmn:dataStoreReference", namespaces=NS)
    shown = references or root.xpath(".//bpmn:dataStore", namespaces=NS)
    problems = []
    for store in shown:
        users = sorted(
            {
                label(owner_of(link.getparent()))
                for link, ref in _links(root)
                if ref == store.get("id")
            }
        )
        used = f", read or written by {', '.join(users)}," if users else ""
        message = (
            f"the data store {label(store)}{used} is ignored: it has no meaning when the process "
            "runs (task data carries the values)"
        )
        problems.append(
            Problem(filename, store.sourceline, message, store.get("id"), severity="warning")
        )
    for link, ref in _links(root):
        if kinds.get(ref) not in ("dataObjectReference", "dataStoreReference", "dataStore"):
            owner = owner_of(link.getparent())
            message = (
                f"the data association of {label(owner)} with `{ref}` is ignored: only data "
                "objects carry data here"
            )
            problems.append(
                Problem(filename, link.sourceline, message, owner.get("id"), severity="warning")
            )
    return problems


def strip(root: etree._Element) -> None:
    """Remove data stores and the associations that lead to anything but a data object."""
    kinds = _kinds(root)
    links = [link for link, ref in _links(root) if kinds.get(ref) != "dataObjectReference"]
    for el in dict.fromkeys(links + root.xpath(_STORES, namespaces=NS)):
        if el.getparent() is not None:
            el.getparent().remove(el)
