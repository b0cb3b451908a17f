"""The tables of the system. Import from here: `from engine.models import ProcessInstance`."""

from engine.models.audit import AuditEvent, AuditStream
from engine.models.bundles import BundleFile, BundleVersion
from engine.models.directory import ApiToken, Group, LoginCode, Membership, SpentToken, User
from engine.models.documents import Document, Draft
from engine.models.instances import HumanTask, ProcessInstance, ServiceCall
from engine.models.notifications import Notification
from engine.models.screening import BlacklistEntry, NumberSequence

__all__ = [
    "ApiToken",
    "AuditEvent",
    "AuditStream",
    "BlacklistEntry",
    "BundleFile",
    "BundleVersion",
    "Document",
    "Draft",
    "Group",
    "HumanTask",
    "LoginCode",
    "Membership",
    "Notification",
    "NumberSequence",
    "ProcessInstance",
    "ServiceCall",
    "SpentToken",
    "User",
]
