"""Drafts kept on the server: one per applicant and key, replaced by each save, and taken out
exactly once by the submission that consumes them."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from engine import drafts
from engine.models import Draft


def count(session) -> int:
    return session.scalar(select(func.count()).select_from(Draft))


def test_saving_again_replaces_the_draft_instead_of_adding_one(session):
    """Each save of the same form overwrites the one row, which reads back as saved."""
    drafts.save(session, "alice", "personal_loan", {"values": {"amount": 1}})
    drafts.save(
        session, "alice", "personal_loan", {"values": {"amount": 2, "employer": "工" * 3000}}
    )
    session.commit()
    row = drafts.load(session, "alice", "personal_loan")
    assert row.data == {"values": {"amount": 2, "employer": "工" * 3000}}
    assert count(session) == 1


def test_drafts_of_two_applicants_and_of_two_types_stay_apart(session):
    """alice's loan, alice's card and bob's loan are three drafts, each consumed on its own."""
    drafts.save(session, "alice", "personal_loan", {"values": {"who": "alice loan"}})
    drafts.save(session, "alice", "credit_card", {"values": {"who": "alice card"}})
    drafts.save(session, "bob", "personal_loan", {"values": {"who": "bob loan"}})
    session.commit()
    assert drafts.consume(session, "alice", "personal_loan") == {"values": {"who": "alice loan"}}
    session.commit()
    assert drafts.load(session, "alice", "credit_card").data == {"values": {"who": "alice card"}}
    assert drafts.load(session, "bob", "personal_loan").data == {"values": {"who": "bob loan"}}
    assert drafts.load(session, "bob", "credit_card") is None


def test_a_consumed_draft_is_gone_so_a_second_submit_gets_nothing(session):
    """The first consume returns the data and deletes the row; the second returns None."""
    drafts.save(session, "alice", "personal_loan", {"values": {"amount": 80000}})
    session.commit()
    assert drafts.consume(session, "alice", "personal_loan") == {"values": {"amount": 80000}}
    session.commit()
    assert drafts.consume(session, "alice", "personal_loan") is None
    assert count(session) == 0


def test_a_refused_submission_rolls_back_and_leaves_the_draft(session):
    """Consume, then the submission is refused and rolled back: the draft is there again."""
    drafts.save(session, "alice", "personal_loan", {"values": {"amount": 5}})
    session.commit()
    assert drafts.consume(session, "alice", "personal_loan") is not None
    session.rollback()
    assert drafts.load(session, "alice", "personal_loan").data == {"values": {"amount": 5}}


def test_of_two_concurrent_submits_only_one_takes_the_draft(session_factory):
    """Two transactions consume the same draft at once: the second waits for the first and,
    once it commits, finds nothing."""
    with session_factory.begin() as setup:
        drafts.save(setup, "alice", "personal_loan", {"values": {"amount": 80000}})
    first, second = session_factory(), session_factory()
    taken: dict[str, object] = {}
    try:
        taken["first"] = drafts.consume(first, "alice", "personal_loan")
        racer = threading.Thread(
            target=lambda: taken.setdefault(
                "second", drafts.consume(second, "alice", "personal_loan")
            )
        )
        racer.start()
        time.sleep(0.5)
        assert racer.is_alive()  # blocked behind the first transaction's delete
        first.commit()
        racer.join(timeout=20)
        second.commit()
    finally:
        first.close()
        second.close()
    assert taken == {"first": {"values": {"amount": 80000}}, "second": None}


def test_a_number_that_is_not_finite_is_left_out_of_the_stored_draft(session):
    """NaN and ±Infinity (which the form refuses) are not stored: JSON cannot hold them."""
    drafts.save(
        session,
        "alice",
        "personal_loan",
        {
            "values": {"amount": float("nan"), "debt": float("inf"), "income": 1.5},
            "n": [1, float("-inf")],
        },
    )
    session.commit()
    session.expire_all()
    assert drafts.load(session, "alice", "personal_loan").data == {
        "values": {"income": 1.5},
        "n": [1],
    }


def test_discarding_drops_only_that_draft(session):
    drafts.save(session, "alice", "task-1", {"values": {}})
    drafts.save(session, "alice", "task-2", {"values": {}})
    drafts.discard(session, "alice", "task-1")
    session.commit()
    assert [r.bundle_key for r in session.scalars(select(Draft))] == ["task-2"]
