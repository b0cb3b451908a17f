"""Notifications: the texts of an event, who receives them, their delivery records, the inbox.

A bundle's texts are `processes/<key>/notifications.json`, one entry per event:

    {"submitted": {"channels": ["email", "sms", "in_app"],
                   "zh": {"subject": "申请 {{ reference }} 已提交", "body": "...", "sms": "..."},
                   "en": {"subject": "Application {{ reference }} received", "body": "..."}}}

`subject` and `body` are required, `sms` is optional (an SMS is the subject otherwise). They are
Jinja templates rendered in a sandbox, as plain text (no HTML escaping), with strict variables:
a name the diagram does not pass is an error naming it, never an empty gap. The variables are the
operator's `values` plus `reference` (the application number, "" before one is issued) and
`recipient_name`. Each person reads their own language (`User.locale`, zh or en); an event
without a text in that language falls back to Chinese, then to English.

Decision: every message (one person × one channel) is a `Notification` row whose unique
idempotency key makes a retried call send only what is not sent yet (`notification_channels`
claims, delivers and records each one). In-app messages are rows of the same table: the message
centre below reads them, and `read_at` marks them read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from engine import clock
from engine.errors import NotFound
from engine.models import Group, Membership, Notification, User

CHANNELS = ("email", "sms", "in_app")
LOCALES = ("zh", "en")


class _TextSandbox(SandboxedEnvironment):
    """Jinja's sandbox minus the globals (`range`, `lipsum`...), `**`, and `*` on non-numbers.

    The sandbox keeps a text away from Python's internals but still lets it loop or grow without
    bound (nested `range(100000)`, `'x' * 10**9`). Filters given huge literal widths remain:
    texts come from deployed bundles, never from applicants.
    """

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        numbers = all(isinstance(v, int | float | Decimal) for v in (left, right))
        if operator == "**" or not numbers:
            raise SecurityError(f"`{operator}` is only for multiplying numbers here")
        return super().call_binop(context, operator, left, right)


_ENV = _TextSandbox(autoescape=False, undefined=StrictUndefined)
_ENV.globals.clear()


class NotificationError(Exception):
    """A mistake in the texts or the recipients of an event: trying again cannot help."""


# --- texts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """An event's message rendered for one person, in the language actually used."""

    locale: str
    subject: str
    body: str
    sms: str


def event_texts(catalog: str | None, event: str) -> dict[str, Any]:
    """The entry of `event` in a bundle's notifications.json, checked for shape."""
    if catalog is None:
        raise NotificationError("the bundle has no notifications.json")
    try:
        entries = json.loads(catalog)
    except json.JSONDecodeError as err:
        raise NotificationError(f"notifications.json is not valid JSON: {err}") from None
    if not isinstance(entries, dict):
        raise NotificationError("notifications.json must be an object of events")
    entry = entries.get(event)
    if not isinstance(entry, dict):
        known = ", ".join(sorted(entries)) or "none"
        raise NotificationError(f"notifications.json has no event `{event}` (it has: {known})")
    channels = entry.get("channels")
    if not isinstance(channels, list) or not channels or not set(channels) <= set(CHANNELS):
        raise NotificationError(f"`channels` must be a list of {', '.join(CHANNELS)}")
    if not any(isinstance(entry.get(locale), dict) for locale in LOCALES):
        raise NotificationError(f"there is no text in {' or '.join(LOCALES)}")
    return entry


def render(entry: dict[str, Any], locale: str, values: dict[str, Any]) -> Text:
    """The texts of `entry` in `locale` (or the fallback language), filled with `values`."""
    wanted = locale.replace("_", "-").split("-")[0].lower()
    order = (wanted, *LOCALES) if wanted in LOCALES else LOCALES
    language = next(code for code in order if isinstance(entry.get(code), dict))
    texts = entry[language]
    for part in ("subject", "body"):
        if not isinstance(texts.get(part), str):
            raise NotificationError(f"the {language} text has no `{part}`")
    subject = " ".join(_render_part(texts, language, "subject", values).split())
    body = _render_part(texts, language, "body", values)
    sms = _render_part(texts, language, "sms", values) if "sms" in texts else subject
    return Text(language, subject[:300], body, sms)


def _render_part(texts: dict, language: str, part: str, values: dict[str, Any]) -> str:
    where = f"the {language} {part}"
    try:
        return _template(str(texts[part])).render(values)
    except UndefinedError as err:
        raise NotificationError(f"{where} uses a variable that is not given: {err}") from None
    except TemplateSyntaxError as err:
        message = f"{where} is not a valid template (line {err.lineno}): {err.message}"
        raise NotificationError(message) from None
    except TemplateError as err:  # the sandbox refusing an unsafe attribute, among others
        raise NotificationError(f"{where} cannot be rendered: {err}") from None


@lru_cache(maxsize=256)
def _template(source: str) -> Template:
    return _ENV.from_string(source)


# --- recipients -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    username: str
    name: str
    email: str | None
    phone: str | None
    locale: str


def recipients(session: Session, to: str, started_by: str) -> list[Recipient]:
    """`applicant`, `group:<key>` (its active members) or a username → the people to tell."""
    if to.startswith("group:"):
        key = to.removeprefix("group:")
        group = session.scalar(select(Group).where(Group.key == key))
        if group is None:
            raise NotificationError(f"there is no group `{key}`")
        users = session.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.group_id == group.id, User.is_active)
            .order_by(User.username)
        )
        return [_recipient(user) for user in users]
    username = started_by if to == "applicant" else to
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotificationError(f"there is no user `{username}`")
    return [_recipient(user)] if user.is_active else []


def _recipient(user: User) -> Recipient:
    name = user.display_name or user.username
    return Recipient(user.username, name, user.email, user.phone, user.locale or "zh")


# --- what was delivered ------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryView:
    channel: str
    recipient: str
    event: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None


def deliveries(session: Session, instance_id: int) -> list[DeliveryView]:
    """Every message of an application with its delivery state, failures included."""
    rows = session.scalars(
        select(Notification)
        .where(Notification.instance_id == instance_id)
        .order_by(Notification.id)
    )
    return [
        DeliveryView(r.channel, r.recipient, r.event, r.status, r.attempts, r.last_error, r.sent_at)
        for r in rows
    ]


# --- the message centre -----------------------------------------------------------------------


@dataclass(frozen=True)
class MessageView:
    id: int
    instance_id: int | None
    event: str
    subject: str
    body: str
    sent_at: datetime | None
    read: bool


def _inbox(username: str):
    return (
        select(Notification)
        .where(Notification.channel == "in_app", Notification.recipient == username)
        .where(Notification.status == "sent")
    )


def unread_count(session: Session, username: str) -> int:
    query = _inbox(username).where(Notification.read_at.is_(None))
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def inbox_messages(session: Session, username: str, limit: int = 50) -> list[MessageView]:
    """The newest in-app messages of `username`, newest first."""
    rows = session.scalars(_inbox(username).order_by(Notification.id.desc()).limit(limit))
    return [
        MessageView(
            r.id, r.instance_id, r.event, r.subject, r.body, r.sent_at, r.read_at is not None
        )
        for r in rows
    ]


def mark_read(session: Session, username: str, notification_id: int) -> None:
    """Mark one of `username`'s messages read; someone else's message is not found."""
    row = session.scalar(_inbox(username).where(Notification.id == notification_id))
    if row is None:
        raise NotFound(f"no message #{notification_id}")
    if row.read_at is None:
        row.read_at = clock.now()
        session.flush()


def mark_all_read(session: Session, username: str) -> int:
    """Mark every unread in-app message of `username` read; how many were."""
    unread = (
        _inbox(username).where(Notification.read_at.is_(None)).with_only_columns(Notification.id)
    )
    result = session.execute(
        update(Notification)
        .where(Notification.id.in_(unread.scalar_subquery()))
        .values(read_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
