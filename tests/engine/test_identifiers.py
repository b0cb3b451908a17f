"""engine/identifiers.py: resident ID, social credit code, mobile numbers, application numbers.

Every sample number is built here from a region code, a date and a sequence, with its check
character computed; none is a real person's or company's.
"""

from __future__ import annotations

import threading
from datetime import date

import pytest

from engine import identifiers
from engine.errors import Conflict
from engine.identifiers import (
    age_on,
    birth_date_of,
    is_resident_id,
    is_uscc,
    issue_reference,
    mobile_problem,
    normalise_mobile,
    reference_prefix,
    resident_id_problem,
    sex_of,
    uscc_problem,
)
from engine.models import NumberSequence

TODAY = date(2026, 11, 28)
STRAY_CHARACTERS = "a mobile number may only hold digits, spaces, dashes and a leading +86"


def make_id(born: str = "19900101", sequence: str = "123", region: str = "110101") -> str:
    """A structurally valid resident ID number with its computed check digit."""
    first17 = region + born + sequence
    return first17 + identifiers.resident_id_check_digit(first17)


def with_check(value: str, check: str) -> str:
    return value[:-1] + check


def make_uscc(body: str = "91110108MA01ABCD1") -> str:
    """A unified social credit code from 17 characters plus the computed check character."""
    return body + identifiers.uscc_check_char(body)


def id_needing_x() -> str:
    """A built ID whose check character is X."""
    for n in range(1000):
        candidate = make_id(sequence=f"{n:03d}")
        if candidate.endswith("X"):
            return candidate
    raise AssertionError("no sequence gives X")


# --- resident identity number -------------------------------------------------------------


def test_a_built_id_is_valid_and_satisfies_iso_7064_mod_11_2():
    """The check digit makes the weighted sum of all 18 characters 1 modulo 11, as ISO 7064 says."""
    value = make_id()
    assert resident_id_problem(value, TODAY) is None and is_resident_id(value)
    digits = [10 if c == "X" else int(c) for c in value]
    assert sum(d * pow(2, 17 - i, 11) for i, d in enumerate(digits)) % 11 == 1


def test_a_wrong_check_digit_names_the_right_one():
    """The person sees which check digit the number should have."""
    value = make_id()
    wrong = "0" if value[-1] != "0" else "1"
    assert resident_id_problem(with_check(value, wrong), TODAY) == (
        f"the check digit should be {value[-1]}"
    )


def test_a_lowercase_x_is_accepted_and_normalised_to_upper_case():
    """Typing x instead of X is fine; the stored form has X."""
    value = id_needing_x()
    assert resident_id_problem(value.lower(), TODAY) is None
    assert identifiers.normalise_resident_id(value.lower()) == value


@pytest.mark.parametrize(
    ("born", "message"),
    [
        ("19991332", "the birth date 19991332 is not a real date"),
        ("20230229", "the birth date 20230229 is not a real date"),
        ("20261129", "the birth date 20261129 is in the future"),
        ("18991231", "the birth date 18991231 is before 1900"),
    ],
)
def test_an_impossible_birth_date_is_refused(born, message):
    """Impossible, future and pre-1900 birth dates are refused even with a right check digit."""
    assert resident_id_problem(make_id(born=born), TODAY) == message


def test_born_today_and_on_29_february_of_a_leap_year_are_real_dates():
    """Edge dates that exist are accepted."""
    assert resident_id_problem(make_id(born="20261128"), TODAY) is None
    assert resident_id_problem(make_id(born="20000229"), TODAY) is None
    assert resident_id_problem(make_id(born="19000101"), TODAY) is None


@pytest.mark.parametrize("region", ["000000", "100101", "160101", "391234", "721234", "990101"])
def test_a_region_outside_every_province_is_refused(region):
    """The first two digits must be a province (11-15, 21-23, …, 71, 81-83)."""
    assert resident_id_problem(make_id(region=region), TODAY) == (
        f"the region code {region} does not start with a province code"
    )


@pytest.mark.parametrize("region", ["110101", "150102", "440305", "650102", "710000", "830000"])
def test_every_kind_of_province_code_is_accepted(region):
    """Provinces, Taiwan, Hong Kong, Macao and the 83 code are all accepted."""
    assert resident_id_problem(make_id(region=region), TODAY) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("11010119900101123", "a resident identity number has 18 characters, not 17"),
        ("1101011990010112345", "a resident identity number has 18 characters, not 19"),
        ("", "a resident identity number has 18 characters, not 0"),
        ("11010119900101A234", "the first 17 characters should be digits"),
        ("１１0101199001011234", "the first 17 characters should be digits"),
        ("11010119900101123Y", "the last character should be a digit or X"),
    ],
)
def test_malformed_ids_say_what_is_wrong(value, message):
    """Wrong length, letters among the digits and a bad last character each get their reason."""
    assert resident_id_problem(value, TODAY) == message
    assert not is_resident_id(value)


def test_the_future_is_judged_by_the_engine_clock_when_no_day_is_given():
    """Without `today`, a birth date in the far future is refused and an old one accepted."""
    assert (
        resident_id_problem(make_id(born="20991231")) == "the birth date 20991231 is in the future"
    )
    assert resident_id_problem(make_id(born="19800101")) is None


def test_birth_date_and_sex_are_read_from_the_number():
    """Digits 7-14 are the birth date; an odd 17th digit is a man, an even one a woman."""
    assert birth_date_of(make_id(born="19850615")) == date(1985, 6, 15)
    assert sex_of(make_id(sequence="013")) == "M"
    assert sex_of(make_id(sequence="024")) == "F"


def test_reading_an_invalid_number_raises_with_the_reason():
    """Birth date and sex are only read from valid numbers."""
    value = make_id()
    wrong = "0" if value[-1] != "0" else "1"
    with pytest.raises(ValueError, match="the check digit should be"):
        birth_date_of(with_check(value, wrong))


@pytest.mark.parametrize(
    ("on", "age"),
    [
        (date(2026, 6, 14), 40),  # the day before the birthday
        (date(2026, 6, 15), 41),  # the birthday
        (date(2026, 12, 31), 41),
        (date(1985, 6, 15), 0),
    ],
)
def test_age_counts_completed_years_around_the_birthday(on, age):
    """A year is complete on the birthday itself, not the day before."""
    assert age_on(make_id(born="19850615"), on) == age


@pytest.mark.parametrize(
    ("on", "age"),
    [
        (date(2023, 2, 28), 22),  # no 29 February in 2023: not yet
        (date(2023, 3, 1), 23),
        (date(2024, 2, 28), 23),
        (date(2024, 2, 29), 24),
    ],
)
def test_someone_born_on_29_february_turns_older_on_1_march_in_common_years(on, age):
    """Leap-day births count their birthday as 1 March when February has 28 days."""
    assert age_on(make_id(born="20000229"), on) == age


def test_age_before_birth_is_an_error():
    """Asking for an age on a day before the birth date is refused."""
    with pytest.raises(ValueError, match="before the birth date"):
        age_on(make_id(born="19900101"), date(1989, 12, 31))


# --- unified social credit code --------------------------------------------------------------


def test_a_built_social_credit_code_is_valid_in_any_letter_case():
    """A code with its computed check character passes, also typed in lower case."""
    value = make_uscc()
    assert uscc_problem(value) is None and is_uscc(value)
    assert uscc_problem(value.lower()) is None
    assert identifiers.normalise_uscc(value.lower()) == value


@pytest.mark.parametrize("authority", list("123456789ANY"))
def test_every_registration_authority_of_the_standard_is_accepted(authority):
    """Authorities 1-9, A, N and Y of GB 32100-2015 table 1 are accepted."""
    assert uscc_problem(make_uscc(authority + "1110108MA01ABCD1")) is None


def test_a_wrong_check_character_names_the_right_one():
    """The person sees which check character the code should have."""
    value = make_uscc()
    wrong = "0" if value[-1] != "0" else "1"
    assert uscc_problem(with_check(value, wrong)) == (f"the check character should be {value[-1]}")


@pytest.mark.parametrize("letter", list("IOZSV"))
def test_letters_the_standard_leaves_out_are_refused(letter):
    """I, O, Z, S and V are never part of a code; the message says where and which."""
    value = "91110108MA01" + letter + "BCD10"
    assert uscc_problem(value) == (
        f"character 13 ({letter}) is not allowed: the code uses digits and upper-case letters "
        "except I, O, Z, S and V"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("B1110108MA01ABCD1", "the first character B is not a registration authority code"),
        ("9111A108MA01ABCD1", "characters 3 to 8 should be a region code of 6 digits, not 11A108"),
    ],
)
def test_a_bad_authority_or_region_is_refused(body, message):
    """The first character must be an authority code and characters 3-8 digits."""
    assert uscc_problem(make_uscc(body)) == message


def test_a_social_credit_code_of_the_wrong_length_is_refused():
    """Length is checked first."""
    assert uscc_problem(make_uscc()[:-1]) == (
        "a unified social credit code has 18 characters, not 17"
    )
    assert not is_uscc("")


# --- mobile numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["13800000000", "+86 138 0000 0000", "86-138-0000-0000", "8613800000000", "199 0000 0000"],
)
def test_mobile_numbers_in_common_notations_normalise_to_11_digits(value):
    """A country code, spaces and dashes are tolerated and dropped."""
    assert mobile_problem(value) is None
    assert normalise_mobile(value)[:3] in {"138", "199"} and len(normalise_mobile(value)) == 11


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1380000000", "a mobile number has 11 digits, not 10"),
        ("+86 138 0000 00000", "a mobile number has 11 digits, not 12"),
        ("12800000000", "a mobile number starts with 13 to 19"),
        ("23800000000", "a mobile number starts with 13 to 19"),
        (
            "(010) 8888 8888",
            "a mobile number may only hold digits, spaces, dashes and a leading +86",
        ),
        ("138O0000000", "a mobile number may only hold digits, spaces, dashes and a leading +86"),
    ],
)
def test_numbers_that_are_not_mainland_mobiles_say_why(value, message):
    """Wrong length, a landline prefix and stray characters each get their reason."""
    assert mobile_problem(value) == message
    with pytest.raises(ValueError, match="a mobile number"):
        normalise_mobile(value)


# --- application numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("personal_loan", "PL"),
        ("credit_card", "CC"),
        ("enterprise_loan", "EL"),
        ("sample_approval", "SA"),
        ("car_loan_refinance", "CLR"),
    ],
)
def test_reference_prefixes_are_fixed_or_the_initials_of_the_words(key, prefix):
    """The three built-in types have fixed prefixes; others use their words' initials."""
    assert reference_prefix(key) == prefix


def test_a_key_without_letters_has_no_prefix():
    """An empty key cannot make a prefix."""
    with pytest.raises(ValueError, match="no application number prefix"):
        reference_prefix("_")


def test_the_first_number_of_the_day_ends_in_000001_and_the_next_ones_count_up(session):
    """PL + date + a six-digit counter that starts at 1 and increments."""
    assert issue_reference(session, "personal_loan", TODAY) == "PL20261128000001"
    assert issue_reference(session, "personal_loan", TODAY) == "PL20261128000002"
    assert issue_reference(session, "personal_loan", TODAY) == "PL20261128000003"


def test_each_prefix_and_each_day_has_its_own_counter(session):
    """A new day restarts at 1, and another type does not share the counter."""
    issue_reference(session, "personal_loan", TODAY)
    issue_reference(session, "personal_loan", TODAY)
    assert issue_reference(session, "credit_card", TODAY) == "CC20261128000001"
    assert issue_reference(session, "personal_loan", date(2026, 11, 29)) == "PL20261129000001"


def test_issuing_flushes_but_leaves_the_commit_to_the_caller(session_factory):
    """A rolled-back submission gives its number back; a committed one keeps it."""
    with session_factory() as first:
        issue_reference(first, "personal_loan", TODAY)
        first.rollback()
    with session_factory() as second:
        assert issue_reference(second, "personal_loan", TODAY) == "PL20261128000001"
        second.commit()
    with session_factory() as third:
        assert third.get(NumberSequence, "PL20261128").last_value == 1


def test_concurrent_submissions_never_get_the_same_number(session_factory):
    """Threads with their own sessions, each committing, receive distinct consecutive numbers."""
    threads, per_thread = 4, 5
    start = threading.Barrier(threads)
    issued: list[str] = []
    failures: list[BaseException] = []
    conflicts: list[int] = []

    def submit() -> None:
        start.wait()
        try:
            for _ in range(per_thread):
                issued.append(submit_once())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    def submit_once() -> str:
        for _ in range(3):
            with session_factory() as session:
                try:
                    number = issue_reference(session, "personal_loan", TODAY)
                    session.commit()
                    return number
                except Conflict:
                    conflicts.append(1)  # the 409 path: the applicant submits again
        raise AssertionError("three conflicts in a row")

    workers = [threading.Thread(target=submit) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not failures, failures
    expected = [f"PL20261128{n:06d}" for n in range(1, threads * per_thread + 1)]
    assert sorted(issued) == expected
    assert len(conflicts) <= threads, "retries inside issue_reference should absorb most races"


def test_a_counter_changed_under_the_session_is_re_read_not_overwritten(session_factory):
    """A stale cached counter loses the version check and is retried with the current value."""
    with session_factory() as slow, session_factory() as fast:
        assert issue_reference(slow, "credit_card", TODAY) == "CC20261128000001"
        slow.commit()  # expire_on_commit=False: `slow` still caches last_value = 1
        assert issue_reference(fast, "credit_card", TODAY) == "CC20261128000002"
        fast.commit()
        assert issue_reference(slow, "credit_card", TODAY) == "CC20261128000003"
        slow.commit()


def test_a_race_lost_every_time_ends_in_conflict_and_the_transaction_survives(session, monkeypatch):
    """If the day's counter cannot be bumped nor created, Conflict; earlier work stays intact."""
    assert issue_reference(session, "personal_loan", TODAY) == "PL20261128000001"
    # As if another submission kept winning: the counter exists, yet is never found free.
    monkeypatch.setattr(identifiers, "_bump", lambda _session, _key: None)
    with pytest.raises(Conflict, match="at the same time"):
        issue_reference(session, "personal_loan", TODAY)
    monkeypatch.undo()
    assert issue_reference(session, "personal_loan", TODAY) == "PL20261128000002"
