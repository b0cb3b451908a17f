"""The audit log: chains append, verify intact, and every kind of tampering is reported."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import JSON, bindparam, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from engine import audit, clock
from engine.db import UTCDateTime
from engine.errors import Conflict
from engine.models import AuditEvent, AuditStream

KEY = "audit-test-key-" + "k" * 32


def _append(session, stream: str, n: int = 1, **extra) -> list[AuditEvent]:
    return [
        audit.append(
            session,
            key=KEY,
            stream=stream,
            kind="step",
            actor="alice",
            data={"n": i, **extra},
            instance_id=extra.get("instance_id"),
        )
        for i in range(n)
    ]


def _seed(session) -> list[AuditEvent]:
    """Three streams: instance:1 (3 events), bundle:loans (2), user:alice (1); committed."""
    events = _append(session, audit.instance_stream(1), 3)
    events += _append(session, audit.bundle_stream("loans"), 2)
    events += _append(session, audit.user_stream("alice"), 1)
    session.commit()
    return events


def _sql(session, statement: str, **params) -> None:
    session.execute(text(statement), params)
    session.commit()


def _canonical(fields: dict) -> bytes:
    """The documented canonical form, written out independently of the module."""
    text_ = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text_.encode("utf-8")


def _fields(e: AuditEvent) -> dict:
    return {
        "stream": e.stream,
        "seq": e.seq,
        "at": e.at.isoformat(timespec="microseconds"),
        "actor": e.actor,
        "kind": e.kind,
        "instance_id": e.instance_id,
        "data": e.data,
        "prev_hash": e.prev_hash,
    }


def test_append_chains_events_per_stream_and_an_untouched_log_verifies(session):
    """Each stream counts from 1 and links to its previous hash; verify finds nothing."""
    events = _seed(session)
    instance = events[:3]
    assert [e.seq for e in instance] == [1, 2, 3]
    assert [e.prev_hash for e in instance] == ["", instance[0].hash, instance[1].hash]
    assert [e.seq for e in events[3:]] == [1, 2, 1]
    head = session.get(AuditStream, "instance:1")
    assert (head.last_seq, head.head_hash) == (3, instance[2].hash)
    assert audit.verify(session, key=KEY) == []


def test_stream_names_have_a_kind_prefix():
    """Instance, bundle and user streams are named `<kind>:<id>`."""
    assert audit.instance_stream(7) == "instance:7"
    assert audit.bundle_stream("loans") == "bundle:loans"
    assert audit.user_stream("bob") == "user:bob"


def test_hash_is_hmac_sha256_of_the_canonical_fields(session):
    """The stored hash is the keyed HMAC of the documented canonical JSON."""
    (e,) = _append(session, "instance:9", instance_id=9)
    expected = hmac.new(KEY.encode(), _canonical(_fields(e)), hashlib.sha256).hexdigest()
    assert e.hash == expected


def test_editing_event_data_with_sql_is_detected(session):
    """A raw UPDATE of an event's data is reported as an edit of that event only."""
    events = _seed(session)
    _sql(session, """UPDATE audit_events SET data = '{"n": 99}' WHERE id = :id""", id=events[1].id)
    assert audit.verify(session, key=KEY) == [
        f"audit event {events[1].id} (instance:1 #2) was edited or forged: "
        "its content does not match its hash"
    ]


def test_an_edit_with_a_recomputed_hash_also_breaks_the_next_link(session):
    """Rehashing an edited row without the key is caught, and so is the broken link after it."""
    events = _seed(session)
    edited = _fields(events[1]) | {"data": {"n": 99}}
    digest = hashlib.sha256(_canonical(edited)).hexdigest()
    _sql(
        session,
        """UPDATE audit_events SET data = '{"n": 99}', hash = :hash WHERE id = :id""",
        hash=digest,
        id=events[1].id,
    )
    assert audit.verify(session, key=KEY) == [
        f"audit event {events[1].id} (instance:1 #2) was edited or forged: "
        "its content does not match its hash",
        f"audit event {events[2].id} (instance:1 #3) does not link to the event before it",
    ]


def test_changing_the_actor_is_detected(session):
    """Rewriting who did something breaks that event's hash."""
    events = _seed(session)
    _sql(session, "UPDATE audit_events SET actor = 'mallory' WHERE id = :id", id=events[4].id)
    assert audit.verify(session, key=KEY) == [
        f"audit event {events[4].id} (bundle:loans #2) was edited or forged: "
        "its content does not match its hash"
    ]


def test_deleting_a_middle_event_is_reported_as_missing(session):
    """A gap in the seq numbers names the deleted event."""
    events = _seed(session)
    _sql(session, "DELETE FROM audit_events WHERE id = :id", id=events[1].id)
    assert audit.verify(session, key=KEY) == ["event #2 of instance:1 is missing (deleted)"]


def test_deleting_the_last_event_is_caught_by_the_stream_head(session):
    """The chain itself still links, but the stream row remembers one more event."""
    events = _seed(session)
    _sql(session, "DELETE FROM audit_events WHERE id = :id", id=events[2].id)
    assert audit.verify(session, key=KEY) == ["the last 1 event(s) of instance:1 were deleted"]


def test_deleting_every_event_of_a_stream_is_detected(session):
    """A stream row that counted events but has none left is reported."""
    _seed(session)
    _sql(session, "DELETE FROM audit_events WHERE stream = 'bundle:loans'")
    assert audit.verify(session, key=KEY) == ["all 2 event(s) of bundle:loans were deleted"]


def test_deleting_the_stream_row_is_detected(session):
    """Events whose audit_streams row is gone are reported."""
    _seed(session)
    _sql(session, "DELETE FROM audit_streams WHERE stream = 'user:alice'")
    assert audit.verify(session, key=KEY) == [
        "the events of user:alice have no stream record (its audit_streams row is gone)"
    ]


def _insert_forged(session, last: AuditEvent, digest) -> None:
    """Append a row after `last` by hand, hashed with `digest`, and move the stream head too."""
    forged = _fields(last) | {"seq": last.seq + 1, "actor": "mallory", "prev_hash": last.hash}
    forged["data"] = {"approved": True}
    hash_ = digest(_canonical(forged))
    columns = [*forged, "hash"]
    insert = text(
        f"INSERT INTO audit_events ({', '.join(columns)})"
        f" VALUES ({', '.join(':' + c for c in columns)})"
    ).bindparams(bindparam("at", type_=UTCDateTime()), bindparam("data", type_=JSON()))
    session.execute(insert, forged | {"at": last.at, "hash": hash_})
    _sql(
        session,
        "UPDATE audit_streams SET last_seq = :seq, head_hash = :hash, lock_version = 99"
        " WHERE stream = :stream",
        seq=forged["seq"],
        hash=hash_,
        stream=last.stream,
    )


def test_a_forged_row_hashed_without_the_key_is_detected(session):
    """A well-linked row with a plain SHA-256 instead of the HMAC does not verify."""
    events = _seed(session)
    _insert_forged(session, events[2], lambda body: hashlib.sha256(body).hexdigest())
    forged_id = session.scalar(select(func.max(AuditEvent.id)))
    assert audit.verify(session, key=KEY) == [
        f"audit event {forged_id} (instance:1 #4) was edited or forged: "
        "its content does not match its hash"
    ]


def test_the_same_forgery_signed_with_the_key_would_pass(session):
    """Control for the forgery test: only the key tells the forged row apart."""
    events = _seed(session)
    _insert_forged(
        session, events[2], lambda body: hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
    )
    assert audit.verify(session, key=KEY) == []


def test_rows_added_by_hand_without_moving_the_head_are_detected(session):
    """A row past the stream's recorded last seq is reported as added outside the log."""
    events = _seed(session)
    _insert_forged(
        session, events[2], lambda body: hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
    )
    _sql(session, "UPDATE audit_streams SET last_seq = 3 WHERE stream = 'instance:1'")
    assert audit.verify(session, key=KEY) == [
        "event #4 of instance:1 was added outside the audit log"
    ]


def test_verifying_with_another_key_reports_every_event(session):
    """With the wrong key no event's hash matches."""
    events = _seed(session)
    findings = audit.verify(session, key="some-other-key")
    assert len(findings) == len(events)
    assert all("was edited or forged" in finding for finding in findings)


def test_the_timestamp_round_trips_exactly(session, session_factory, monkeypatch):
    """`at` read back in another session equals, to the microsecond, what was hashed."""
    moment = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: moment)
    (e,) = _append(session, "instance:5", instance_id=5)
    session.commit()
    with session_factory() as other:
        stored = other.get(AuditEvent, e.id)
        assert stored.at == moment
        assert stored.at.tzinfo is not None
        assert next(audit.export(other))["at"] == "2024-02-29T23:59:58.123456+00:00"
    assert audit.verify(session, key=KEY) == []


def test_dates_and_decimals_are_stored_as_the_text_that_was_hashed(session, session_factory):
    """Non-JSON values become strings before hashing, so the stored data verifies."""
    data = {"amount": Decimal("1200.50"), "due": date(2024, 5, 1), 3: ("a", "b")}
    e = audit.append(session, key=KEY, stream="instance:2", kind="k", actor="bob", data=data)
    session.commit()
    expected = {"amount": "1200.50", "due": "2024-05-01", "3": ["a", "b"]}
    with session_factory() as other:
        assert other.get(AuditEvent, e.id).data == expected
    assert audit.verify(session, key=KEY) == []


def test_data_that_cannot_be_json_is_refused(session):
    """An object JSON cannot hold is a programming error, raised before anything is written."""
    with pytest.raises(TypeError, match="cannot hold a object"):
        audit.append(session, key=KEY, stream="s", kind="k", actor="a", data={"x": object()})
    assert session.scalar(select(func.count()).select_from(AuditStream)) == 0


def test_concurrent_append_to_the_same_stream_raises_conflict(session, session_factory):
    """Two writers read one head; the second to flush gets Conflict, the first's chain holds."""
    _append(session, "instance:1")
    session.commit()
    with session_factory() as second:
        # Let the first writer append and commit after `second` read the head, before it flushes.
        event.listen(second, "before_flush", _once(lambda: _commit_one(session)))
        with pytest.raises(Conflict, match="same audit log") as raised:
            _append(second, "instance:1")
            audit.flush(second)
        second.rollback()
    # The stream's version counter or the (stream, seq) key: whichever the flush reaches first.
    assert isinstance(raised.value.__cause__, StaleDataError | IntegrityError)
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 2
    assert session.get(AuditStream, "instance:1", populate_existing=True).last_seq == 2
    assert audit.verify(session, key=KEY) == []


def test_concurrent_first_appends_to_a_new_stream_raise_conflict(session, session_factory):
    """Both writers create the stream row; the second's insert fails as Conflict."""
    with session_factory() as second:
        event.listen(second, "before_flush", _once(lambda: _commit_one(session)))
        with pytest.raises(Conflict, match="same audit log") as raised:
            _append(second, "instance:1")
            audit.flush(second)
        second.rollback()
    assert isinstance(raised.value.__cause__, IntegrityError)  # the stream's primary key
    assert [e.actor for e in audit.events_for_instance(session, 1)] == ["alice"]
    assert audit.verify(session, key=KEY) == []


def _commit_one(session) -> None:
    _append(session, "instance:1")
    session.commit()


def _once(action):
    done = []

    def hook(*_args) -> None:
        if not done:
            done.append(True)
            action()

    return hook


def test_export_and_instance_history_are_ordered(session):
    """Export lists every event by stream then seq; an instance's history is its own stream."""
    _seed(session)
    rows = list(audit.export(session))
    assert [(r["stream"], r["seq"]) for r in rows] == sorted((r["stream"], r["seq"]) for r in rows)
    assert len(rows) == 6
    assert set(rows[0]) == {
        "id",
        "stream",
        "seq",
        "at",
        "actor",
        "kind",
        "instance_id",
        "data",
        "prev_hash",
        "hash",
    }
    json.dumps(rows)  # plain enough for a JSON export
    assert [r["seq"] for r in audit.export(session, stream="instance:1")] == [1, 2, 3]
    assert [e.seq for e in audit.events_for_instance(session, 1)] == [1, 2, 3]


def test_append_refuses_an_empty_key_or_oversized_names(session):
    """An empty key would make the chain forgeable; over-long names would not fit the columns."""
    with pytest.raises(ValueError, match="secret key"):
        audit.append(session, key="", stream="s", kind="k", actor="a")
    with pytest.raises(ValueError, match="kind"):
        audit.append(session, key=KEY, stream="s", kind="k" * 41, actor="a")
