"""Delivering one notification: claim its record, send it over its channel, record the outcome.

Decision: a message is claimed before it is sent. The first run inserts its row (unique
idempotency key) as `sending`, with `next_attempt_at` as the end of the claim; a later run may
take it over only while it is `pending` or `failed`, or once that claim has expired (a crashed
worker). So a retried, redelivered or concurrent run of a call never sends a message twice.
Every failure is sorted here into transient (refused connection, timeout, SMTP 4xx, HTTP 5xx or
429: the call is retried) or permanent (a wrong address or request: retrying cannot help).
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import requests
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from engine import clock
from engine.config import Settings
from engine.models import Notification
from engine.notifications import Recipient


class DeliveryFailed(Exception):
    """A message was not delivered; `transient` says whether trying later may help."""

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.transient = transient


def idempotency_key(call_id: int, channel: str, username: str) -> str:
    return f"call:{call_id}:{channel}:{username}"


@dataclass(frozen=True)
class Draft:
    """One message to one person on one channel, rendered, before delivery."""

    key: str
    instance_id: int
    event: str
    channel: str
    username: str
    #: The e-mail address, phone number or (in_app) username; None when there is none.
    address: str | None
    locale: str
    subject: str
    #: The e-mail or in-app body, or the SMS text.
    body: str
    #: Why it will not be sent (no address, no gateway); recorded as `skipped`.
    skip_reason: str | None = None


def address(settings: Settings, channel: str, person: Recipient) -> tuple[str | None, str | None]:
    """Where a message to `person` on `channel` goes, or None and why it cannot be sent."""
    if channel == "email":
        return (person.email, None) if person.email else (None, "no e-mail address")
    if channel == "sms":
        if not settings.sms_url:
            return None, "SMS gateway not configured"
        return (person.phone, None) if person.phone else (None, "no mobile phone number")
    return person.username, None


@dataclass(frozen=True)
class Claim:
    """Whether this run may deliver the message; if not, the row's status and error."""

    mine: bool
    status: str = "sending"
    error: str | None = None


def claim(session_factory: sessionmaker, draft: Draft, lease: timedelta) -> Claim:
    """Take the message for delivery unless it is sent, skipped, or being sent elsewhere."""
    now = clock.now()
    fields = {
        "channel": draft.channel,
        "recipient": draft.address or draft.username,
        "locale": draft.locale,
        "subject": draft.subject,
        "body": draft.body,
        "status": "sending",
        "next_attempt_at": now + lease,
    }
    if _insert(session_factory, draft, fields):
        return Claim(True)
    with session_factory.begin() as session:
        expired = and_(Notification.status == "sending", Notification.next_attempt_at < now)
        taken = session.execute(
            update(Notification)
            .where(Notification.idempotency_key == draft.key)
            .where(or_(Notification.status.in_(("pending", "failed")), expired))
            .values(**fields)
        ).rowcount
        if taken:
            return Claim(True)
        status, error = session.execute(
            select(Notification.status, Notification.last_error).where(
                Notification.idempotency_key == draft.key
            )
        ).one()
        return Claim(False, status, error)


def _insert(session_factory: sessionmaker, draft: Draft, fields: dict) -> bool:
    """Record a message not seen before; False if it is already recorded."""
    row = Notification(
        idempotency_key=draft.key, instance_id=draft.instance_id, event=draft.event, **fields
    )
    try:
        with session_factory.begin() as session:
            session.add(row)
    except IntegrityError:
        return False  # by an earlier attempt, or by another worker this very moment
    return True


def finish(session_factory: sessionmaker, key: str, status: str, error: str | None = None) -> None:
    """Record the end of a claimed delivery: sent, skipped, pending (retried later) or failed."""
    with session_factory.begin() as session:
        row = session.scalar(select(Notification).where(Notification.idempotency_key == key))
        row.status, row.last_error, row.next_attempt_at = status, error, None
        if status != "skipped":
            row.attempts += 1
        if status == "sent":
            row.sent_at = clock.now()


# --- channels ---------------------------------------------------------------------------------


def deliver(settings: Settings, draft: Draft) -> None:
    """Send a claimed message; an in-app message is its row, so there is nothing to send."""
    if draft.channel == "email":
        send_email(settings, draft)
    elif draft.channel == "sms":
        send_sms(settings, draft)


def email_message(settings: Settings, draft: Draft) -> EmailMessage:
    """UTF-8 subject and body; the Message-ID follows from the key, so copies are recognisable."""
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "approval.local"
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = draft.address
    message["Subject"] = draft.subject
    message["Date"] = format_datetime(clock.now())
    message["Message-ID"] = f"<{hashlib.sha256(draft.key.encode()).hexdigest()[:32]}@{domain}>"
    message.set_content(draft.body, cte="base64")  # 7-bit safe for any server
    return message


def send_email(settings: Settings, draft: Draft) -> None:
    server = f"the mail server {settings.smtp_host}:{settings.smtp_port}"
    try:
        _smtp_send(settings, email_message(settings, draft))
    except smtplib.SMTPRecipientsRefused as err:
        replies = list(err.recipients.values())
        transient = all(400 <= code < 500 for code, _ in replies)
        said = "; ".join(f"{code} {_text(reply)}" for code, reply in replies)
        message = f"{server} refused {draft.address}: {said}"
        raise DeliveryFailed(message, transient=transient) from None
    except smtplib.SMTPResponseException as err:
        message = f"{server} answered {err.smtp_code} {_text(err.smtp_error)}"
        raise DeliveryFailed(message, transient=400 <= err.smtp_code < 500) from None
    except smtplib.SMTPNotSupportedError as err:
        raise DeliveryFailed(f"{server}: {err}", transient=False) from None
    except (smtplib.SMTPException, OSError) as err:
        raise DeliveryFailed(f"{server} cannot be reached: {err}", transient=True) from None


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


def _smtp_send(settings: Settings, message: EmailMessage) -> None:
    smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.http_timeout)
    try:
        if settings.smtp_tls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)
    finally:
        # The message is accepted by now: a failed goodbye must not make it be sent again.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()


def send_sms(settings: Settings, draft: Draft) -> None:
    """POST {to, text, key} to the gateway; any 2xx is sent (the key lets it drop copies)."""
    payload = {"to": draft.address, "text": draft.body, "key": draft.key}
    try:
        response = requests.post(settings.sms_url, json=payload, timeout=settings.http_timeout)
    except (requests.ConnectionError, requests.Timeout) as err:
        raise DeliveryFailed(f"the SMS gateway cannot be reached: {err}", transient=True) from None
    except requests.RequestException as err:
        raise DeliveryFailed(f"the SMS gateway URL is wrong: {err}", transient=False) from None
    if 200 <= response.status_code < 300:
        return
    transient = response.status_code >= 500 or response.status_code == 429
    answer = response.text[:200]
    raise DeliveryFailed(
        f"the SMS gateway answered HTTP {response.status_code}: {answer}", transient=transient
    )
