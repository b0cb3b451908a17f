"""The tables of the system. Import from here: `from engine.models import ProcessInstance`."""

from engine.models.audit import AuditEvent, AuditStream
from engine.models.bundles import BundleFile, BundleVersion
from engine.models.directory import Group, Membership, User
from engine.models.instances import HumanTask, ProcessInstance, ServiceCall

__all__ = [
    "AuditEvent",
    "AuditStream",
    "BundleFile",
    "BundleVersion",
    "Group",
    "HumanTask",
    "Membership",
    "ProcessInstance",
    "ServiceCall",
    "User",
]
