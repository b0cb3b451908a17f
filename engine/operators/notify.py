"""`notify.send`: tell people about an application by e-mail, SMS and in-app message.

Parameters: `event` (a key of the bundle's `notifications.json`; its format is described in
`engine.notifications`), `to` (`applicant`, `group:<key>` for each active member, or a
username) and `values` (template variables; `reference` and `recipient_name` are added).
Result: `{"sent": [{"channel": ..., "recipient": <username>, "status": "sent" | "skipped"}]}`,
a skipped message with its `reason` (no e-mail address, no phone, no SMS gateway).

Decision: every text is rendered for every recipient before anything is sent, so a bad template
sends nothing. Then each message is claimed, delivered and recorded on its own
(`engine.notification_channels`): if any failed transiently the call is retried with back-off
and only the unsent ones go out again; a permanent failure stops the instance with a message
naming the event, and every failure stays on its row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from engine import notification_channels as channels
from engine import notifications
from engine.notification_channels import DeliveryFailed, Draft
from engine.operators import CallInfo, OperatorFailed, operator

#: A claim on a message lasts this many network timeouts: longer than one delivery can take.
LEASE_TIMEOUTS = 6


@dataclass(frozen=True)
class _Outcome:
    draft: Draft
    #: sent, skipped or failed
    status: str
    error: str | None = None
    transient: bool = False
    #: False for a failed message of this run whose row still waits for its final status.
    recorded: bool = True


@operator("notify.send")
def send(params: dict[str, Any], call: CallInfo) -> dict[str, Any]:
    """Send `event` to `to` on the event's channels, each message at most once."""
    event, to, values = _params(params)
    if call.session_factory is None:
        raise OperatorFailed("notify.send needs the database to record messages", retry=False)
    try:
        drafts = _drafts(call, event, to, values)
    except notifications.NotificationError as err:
        raise OperatorFailed(f"notification `{event}`: {err}", retry=False) from None
    outcomes = [_send_one(call, draft) for draft in drafts]
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        _fail(call, event, failed, len(outcomes))
    return {"sent": [_entry(o) for o in outcomes]}


def _params(params: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    event, to, values = params.get("event"), params.get("to"), params.get("values")
    if not isinstance(event, str) or not 0 < len(event) <= 60:
        raise OperatorFailed("notify.send needs `event`, a name of notifications.json", retry=False)
    if not isinstance(to, str) or not to:
        message = "notify.send needs `to`: 'applicant', 'group:<key>' or a username"
        raise OperatorFailed(message, retry=False)
    if values is not None and not isinstance(values, dict):
        raise OperatorFailed("`values` of notify.send must be a dict", retry=False)
    return event, to, dict(values or {})


def _drafts(call: CallInfo, event: str, to: str, values: dict[str, Any]) -> list[Draft]:
    entry = notifications.event_texts(call.data.get("notifications.json"), event)
    with call.session_factory() as session:
        people = notifications.recipients(session, to, call.started_by)
    reference = call.reference or values.get("reference") or ""
    drafts = []
    for person in people:
        given = {**values, "reference": reference, "recipient_name": person.name}
        text = notifications.render(entry, person.locale, given)
        for channel in entry["channels"]:
            address, reason = channels.address(call.settings, channel, person)
            key = channels.idempotency_key(call.call_id, channel, person.username)
            body = text.sms if channel == "sms" else text.body
            drafts.append(
                Draft(
                    key,
                    call.instance_id,
                    event,
                    channel,
                    person.username,
                    address,
                    text.locale,
                    text.subject,
                    body,
                    reason,
                )
            )
    return drafts


def _send_one(call: CallInfo, draft: Draft) -> _Outcome:
    factory = call.session_factory
    lease = timedelta(seconds=LEASE_TIMEOUTS * call.settings.http_timeout)
    claim = channels.claim(factory, draft, lease)
    if not claim.mine and claim.status == "sending":
        return _Outcome(draft, "failed", "another worker is sending it right now", transient=True)
    if not claim.mine:
        return _Outcome(draft, claim.status, claim.error)  # sent or skipped before
    if draft.skip_reason:
        channels.finish(factory, draft.key, "skipped", draft.skip_reason)
        return _Outcome(draft, "skipped", draft.skip_reason)
    try:
        channels.deliver(call.settings, draft)
    except DeliveryFailed as err:
        return _Outcome(draft, "failed", str(err), err.transient, recorded=False)
    except Exception as err:  # an address the mail library refuses, say: the row must say so
        return _Outcome(draft, "failed", f"{type(err).__name__}: {err}", recorded=False)
    channels.finish(factory, draft.key, "sent")
    return _Outcome(draft, "sent")


def _fail(call: CallInfo, event: str, failed: list[_Outcome], total: int) -> None:
    transient = all(o.transient for o in failed)
    status = "pending" if transient and not _last_attempt(call) else "failed"
    for outcome in failed:
        if not outcome.recorded:
            channels.finish(call.session_factory, outcome.draft.key, status, outcome.error)
    detail = "; ".join(f"{o.draft.channel} to {o.draft.username}: {o.error}" for o in failed)
    message = f"notification `{event}`: {len(failed)} of {total} messages not sent ({detail})"
    raise OperatorFailed(message, retry=transient)


def _last_attempt(call: CallInfo) -> bool:
    # Imported here: service_calls imports the operator registry, which imports this module.
    from engine.service_calls import MAX_ATTEMPTS

    return call.attempt >= MAX_ATTEMPTS


def _entry(outcome: _Outcome) -> dict[str, Any]:
    entry = {
        "channel": outcome.draft.channel,
        "recipient": outcome.draft.username,
        "status": outcome.status,
    }
    if outcome.status == "skipped":
        entry["reason"] = outcome.error
    return entry
