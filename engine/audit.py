"""The append-only, tamper-evident audit log: who did what, when, to which instance, bundle or user.

Decision: every stream (`instance:<id>`, `bundle:<key>`, `user:<name>`) is a hash chain. Each
event's hash is an HMAC-SHA256, keyed by the secret key, over its canonical JSON fields and the
previous event's hash; the `audit_streams` row holds the last seq and head hash. So an edited,
deleted, reordered or hand-inserted row no longer verifies, and without the key nobody can forge
a replacement chain. Appends are optimistic: the stream row's version counter makes a concurrent
append to the same stream fail with `Conflict` instead of forking the chain. Events are only
ever inserted, so the unit of work does not track them: they are queued and written as one Core
INSERT at the end of the session's next flush, after the stream rows' version checks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from itertools import groupby
from typing import Any
from uuid import UUID

from sqlalchemy import Row, event, exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine import clock
from engine.errors import Conflict
from engine.models.audit import AuditEvent, AuditStream

#: Rows fetched per round trip while verifying or exporting, so memory stays bounded.
BATCH = 500

_LIMITS = {"stream": 120, "actor": 80, "kind": 40}  # the column widths of `AuditEvent`

_EVENT_COLUMNS = (
    AuditEvent.id,
    AuditEvent.stream,
    AuditEvent.seq,
    AuditEvent.at,
    AuditEvent.actor,
    AuditEvent.kind,
    AuditEvent.instance_id,
    AuditEvent.data,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def instance_stream(instance_id: int) -> str:
    return f"instance:{instance_id}"


def bundle_stream(bundle_key: str) -> str:
    return f"bundle:{bundle_key}"


def user_stream(username: str) -> str:
    return f"user:{username}"


# --- writing -----------------------------------------------------------------------------------


def append(
    session: Session,
    *,
    key: str,
    stream: str,
    kind: str,
    actor: str,
    data: dict | None = None,
    instance_id: int | None = None,
) -> AuditEvent:
    """Add the next event of `stream` to the session (flushed with the caller's own work).

    A concurrent writer to the same stream makes the flush fail (the stream row's version
    check, or for a new stream its primary key); `flush` below turns that into `Conflict`.
    Either way the transaction rolls back whole, so no event of the loser is ever stored.
    """
    _check_arguments(key, stream=stream, actor=actor, kind=kind)
    plain = _plain_data(data or {})
    head = _head(session, stream)
    fields = {
        "stream": stream,
        "seq": head.last_seq + 1,
        "at": _stamp(),
        "actor": actor,
        "kind": kind,
        "instance_id": instance_id,
        "data": plain,
        "prev_hash": head.head_hash,
    }
    event = AuditEvent(**fields, hash=_sign(key, fields))
    head.last_seq, head.head_hash = event.seq, event.hash
    # Not `session.add`: the head's change makes the session dirty, so a flush is due anyway.
    session.info.setdefault(_QUEUED, []).append(event)
    return event


_HEADS = "audit_heads"
_QUEUED = "audit_queued"
_TABLE = AuditEvent.__table__
# (stream, seq) is unique: it maps each returned id to its event whatever order the rows come
# back in, so the rows go as one multi-row INSERT (`sort_by_parameter_order` would split them).
_INSERT = insert(_TABLE).returning(_TABLE.c.id, _TABLE.c.stream, _TABLE.c.seq)


def _head(session: Session, stream: str) -> AuditStream:
    # Read fresh once per transaction (with expire_on_commit=False a cached row may predate
    # other commits); later appends in the same transaction reuse it without a query.
    heads = session.info.setdefault(_HEADS, {})
    head = heads.get(stream)
    if head is None:
        head = session.get(AuditStream, stream, populate_existing=True)
        if head is None:
            head = AuditStream(stream=stream, last_seq=0, head_hash="")
            session.add(head)
        heads[stream] = head
    return head


@event.listens_for(Session, "after_transaction_end")
def _forget_heads(session: Session, transaction) -> None:
    # A flush runs in a subtransaction: keep the heads then; forget them when the real
    # transaction (or a savepoint, which may roll back) ends.
    if transaction.parent is None or transaction.nested:
        session.info.pop(_HEADS, None)
        session.info.pop(_QUEUED, None)  # a commit flushed them; a rollback drops them


@event.listens_for(Session, "after_flush")
def _insert_queued(session: Session, _context) -> None:
    # After the unit of work, so a lost race surfaces first as the stream row's version check
    # (or its primary key), and inside the flush, so a failure here rolls it back whole.
    events = session.info.pop(_QUEUED, None)
    if not events:
        return
    rows = [{name: getattr(e, name) for name in (*_HASHED, "hash")} for e in events]
    ids = {
        (stream, seq): new_id for new_id, stream, seq in session.connection().execute(_INSERT, rows)
    }
    for audit_event in events:  # callers and tests name events by id, as before
        audit_event.id = ids[audit_event.stream, audit_event.seq]


def flush(session: Session) -> None:
    """Flush, reporting a lost race for an audit stream as `Conflict`."""
    try:
        session.flush()
    except (IntegrityError, StaleDataError) as exc:
        raise Conflict(
            "someone else wrote to the same audit log at the same time; reload and try again"
        ) from exc


def _check_arguments(key: str, **texts: str) -> None:
    if not key:
        # An empty HMAC key would make the chain recomputable by anyone with database access.
        raise ValueError("the audit log needs the secret key")
    for name, value in texts.items():
        if not value or len(value) > _LIMITS[name]:
            raise ValueError(f"audit {name} must be 1 to {_LIMITS[name]} characters: {value!r}")


def _stamp() -> datetime:
    """Now, in UTC: the value both backends give back, so the hash is recomputable.

    A Python datetime already stops at whole microseconds, the precision of both SQLite's text
    and PostgreSQL's timestamp, so there is nothing finer to truncate; the zone is made UTC
    because the column stores UTC and hands back `timezone.utc`.
    """
    return clock.now().astimezone(UTC)


def _plain_data(data: dict) -> dict:
    """`data` as JSON gives it back (string keys, lists, dates and decimals as text).

    Storing this rather than `data` itself means what is read back is what was hashed.
    """
    if not isinstance(data, dict):
        raise TypeError(f"audit data must be a dict, not {type(data).__name__}")
    return json.loads(json.dumps(data, default=_as_text, allow_nan=False, ensure_ascii=False))


def _as_text(value: Any) -> str:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"audit data cannot hold a {type(value).__name__}: {value!r}")


#: The fields an event's hash covers (everything but its id, which the database assigns).
_HASHED = ("stream", "seq", "at", "actor", "kind", "instance_id", "data", "prev_hash")


def _canonical(fields: dict[str, Any]) -> bytes:
    body = {name: fields[name] for name in _HASHED}
    body["at"] = body["at"].isoformat(timespec="microseconds")
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _sign(key: str, fields: dict[str, Any]) -> str:
    return hmac.new(key.encode("utf-8"), _canonical(fields), hashlib.sha256).hexdigest()


# --- reading -----------------------------------------------------------------------------------


def events_for_instance(session: Session, instance_id: int) -> list[AuditEvent]:
    """The history of one instance: its `instance:<id>` stream, oldest first."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.stream == instance_stream(instance_id))
        .order_by(AuditEvent.seq)
    )
    return list(session.scalars(query))


def export(session: Session, *, stream: str | None = None) -> Iterator[dict]:
    """Every event (or those of `stream`) as a JSON-ready dict, ordered by stream then seq."""
    query = select(*_EVENT_COLUMNS).order_by(AuditEvent.stream, AuditEvent.seq)
    if stream is not None:
        query = query.where(AuditEvent.stream == stream)
    for row in session.execute(query.execution_options(yield_per=BATCH)):
        item = row._asdict()
        item["at"] = item["at"].isoformat(timespec="microseconds")
        yield item


# --- verifying ---------------------------------------------------------------------------------


def verify(session: Session, *, key: str) -> list[str]:
    """Check every chain against `key`; return what was tampered with, in plain words.

    An empty list means the log is intact.
    """
    _check_arguments(key)
    # One ordered pass over all events, each row carrying its stream's head (outer join, so an
    # event whose stream row is gone still shows up); streamed, one chain in memory at a time.
    query = (
        select(
            *_EVENT_COLUMNS,
            AuditStream.stream.label("head_stream"),
            AuditStream.last_seq.label("head_seq"),
            AuditStream.head_hash.label("head_hash"),
        )
        .outerjoin(AuditStream, AuditStream.stream == AuditEvent.stream)
        .order_by(AuditEvent.stream, AuditEvent.seq)
        .execution_options(yield_per=BATCH)
    )
    findings: list[str] = []
    for stream, rows in groupby(session.execute(query), key=lambda row: row.stream):
        findings.extend(_check_chain(key, stream, rows))
    findings.extend(_emptied_streams(session))
    return findings


def _check_chain(key: str, stream: str, rows: Iterable[Row]) -> list[str]:
    findings: list[str] = []
    expected_seq, prev_hash, row = 1, "", None
    for row in rows:
        event = row._asdict()
        where = f"audit event {event['id']} ({stream} #{event['seq']})"
        if not hmac.compare_digest(_sign(key, event), event["hash"]):
            findings.append(f"{where} was edited or forged: its content does not match its hash")
        if event["seq"] > expected_seq:
            findings.append(_missing(stream, expected_seq, event["seq"] - 1))
        elif event["prev_hash"] != prev_hash:
            findings.append(f"{where} does not link to the event before it")
        expected_seq, prev_hash = event["seq"] + 1, event["hash"]
    if row is not None:
        findings.extend(_check_head(stream, row))
    return findings


def _check_head(stream: str, last: Row) -> list[str]:
    """Compare the chain's last event with the head recorded in `audit_streams`."""
    seq, last_seq = last.seq, last.head_seq
    if last.head_stream is None:
        return [f"the events of {stream} have no stream record (its audit_streams row is gone)"]
    if last_seq > seq:
        return [f"the last {last_seq - seq} event(s) of {stream} were deleted"]
    if last_seq < seq:
        outside = "outside the audit log"
        return [_span(stream, last_seq + 1, seq, f"was added {outside}", f"were added {outside}")]
    if last.head_hash != last.hash:
        return [f"the head of {stream} does not match its last event #{seq}"]
    return []


def _missing(stream: str, first: int, last: int) -> str:
    return _span(stream, first, last, "is missing (deleted)", "are missing (deleted)")


def _span(stream: str, first: int, last: int, one: str, many: str) -> str:
    if first == last:
        return f"event #{first} of {stream} {one}"
    return f"events #{first} to #{last} of {stream} {many}"


def _emptied_streams(session: Session) -> list[str]:
    """Streams that recorded events of which none is left (the join above cannot see them)."""
    has_events = exists().where(AuditEvent.stream == AuditStream.stream)
    query = (
        select(AuditStream.stream, AuditStream.last_seq)
        .where(AuditStream.last_seq > 0, ~has_events)
        .order_by(AuditStream.stream)
    )
    return [f"all {n} event(s) of {stream} were deleted" for stream, n in session.execute(query)]
