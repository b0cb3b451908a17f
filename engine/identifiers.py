"""Chinese identifiers an application carries, and the application numbers the bank issues.

Checks the resident identity number (GB 11643-1999), the unified social credit code
(GB 32100-2015) and mainland mobile numbers; each `*_problem` function answers None or one reason
a person can act on ("the check digit should be 5"). Only `issue_reference` touches the database.

Decision: application numbers come from one counter row per prefix and day, read and bumped by a
single UPDATE … RETURNING (which also moves the row's version), so two submissions never share a
number. Only the day's first number can lose a race, on the insert; that is retried inside a
SAVEPOINT, a few times, then reported as `Conflict`; the caller's transaction survives either way.
"""

from __future__ import annotations

import re
from datetime import date, timedelta, timezone

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import clock
from engine.errors import Conflict
from engine.models import NumberSequence

# China has one time zone and no summer time; a birth date is a date there, not in UTC.
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"  # indexed by the weighted sum mod 11 (ISO 7064 MOD 11-2)
PROVINCES = frozenset(
    [11, 12, 13, 14, 15, 21, 22, 23, *range(31, 38), *range(41, 47), *range(50, 55)]
    + [*range(61, 66), 71, 81, 82, 83]
)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
#: 1 机构编制, 2 外交, 3 司法行政, 4 文化, 5 民政, 6 旅游, 7 宗教, 8 工会, 9 工商,
#: A 中央军委改革和编制办公室, N 农业, Y 其他 (GB 32100-2015, table 1).
USCC_AUTHORITIES = frozenset("123456789ANY")

PREFIXES = {"personal_loan": "PL", "credit_card": "CC", "enterprise_loan": "EL"}
_ATTEMPTS = 5


def resident_id_check_digit(first17: str) -> str:
    """The check character of the 17 digits of a resident identity number."""
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def resident_id_problem(value: str, today: date | None = None) -> str | None:
    """None if `value` is a valid resident identity number (lowercase x allowed), else why not."""
    if not isinstance(value, str) or len(value) != 18:
        got = f"{len(value)}" if isinstance(value, str) else "none"
        return f"a resident identity number has 18 characters, not {got}"
    value = value.upper()
    if not (value[:17].isascii() and value[:17].isdigit()):
        return "the first 17 characters should be digits"
    if value[17] not in "0123456789X":
        return "the last character should be a digit or X"
    if int(value[:2]) not in PROVINCES:
        return f"the region code {value[:6]} does not start with a province code"
    problem = _birth_date_problem(value[6:14], today or clock.now().astimezone(CHINA).date())
    if problem:
        return problem
    expected = resident_id_check_digit(value[:17])
    return None if value[17] == expected else f"the check digit should be {expected}"


def _birth_date_problem(digits: str, today: date) -> str | None:
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return f"the birth date {digits} is not a real date"
    if born > today:
        return f"the birth date {digits} is in the future"
    if born.year < 1900:
        return f"the birth date {digits} is before 1900"
    return None


def is_resident_id(value: str) -> bool:
    return resident_id_problem(value) is None


def normalise_resident_id(value: str) -> str:
    """The number with an upper-case X; ValueError saying why if it is not valid."""
    _require(resident_id_problem(value))
    return value.upper()


def birth_date_of(id_number: str) -> date:
    """The birth date written in a valid resident identity number."""
    digits = normalise_resident_id(id_number)[6:14]
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def age_on(id_number: str, on: date) -> int:
    """Completed years on `on`; someone born on 29 February turns a year older on 1 March."""
    born = birth_date_of(id_number)
    if on < born:
        raise ValueError(f"{on.isoformat()} is before the birth date {born.isoformat()}")
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def sex_of(id_number: str) -> str:
    """ "M" or "F": the 17th digit is odd for men and even for women."""
    return "M" if int(normalise_resident_id(id_number)[16]) % 2 else "F"


def uscc_check_char(first17: str) -> str:
    """The check character of the first 17 characters of a unified social credit code."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_problem(value: str) -> str | None:
    """None if `value` is a valid unified social credit code (any letter case), else why not."""
    if not isinstance(value, str) or len(value) != 18:
        got = f"{len(value)}" if isinstance(value, str) else "none"
        return f"a unified social credit code has 18 characters, not {got}"
    value = value.upper()
    for position, char in enumerate(value, start=1):
        if char not in USCC_ALPHABET:
            return (
                f"character {position} ({char}) is not allowed: the code uses digits and "
                "upper-case letters except I, O, Z, S and V"
            )
    if value[0] not in USCC_AUTHORITIES:
        return f"the first character {value[0]} is not a registration authority code"
    if not value[2:8].isdigit():
        return f"characters 3 to 8 should be a region code of 6 digits, not {value[2:8]}"
    expected = uscc_check_char(value[:17])
    return None if value[17] == expected else f"the check character should be {expected}"


def is_uscc(value: str) -> bool:
    return uscc_problem(value) is None


def normalise_uscc(value: str) -> str:
    """The code in upper case; ValueError saying why if it is not valid."""
    _require(uscc_problem(value))
    return value.upper()


def mobile_problem(value: str) -> str | None:
    """None if `value` is a mainland mobile number (+86, spaces and dashes allowed), else why."""
    if not isinstance(value, str):
        return "a mobile number should be written as text"
    digits = _mobile_digits(value)
    if not digits.isascii() or not digits.isdigit():
        return "a mobile number may only hold digits, spaces, dashes and a leading +86"
    if len(digits) != 11:
        return f"a mobile number has 11 digits, not {len(digits)}"
    if digits[0] != "1" or digits[1] not in "3456789":
        return "a mobile number starts with 13 to 19"
    return None


def normalise_mobile(value: str) -> str:
    """The 11 digits of a mainland mobile number; ValueError saying why if it is not one."""
    _require(mobile_problem(value))
    return _mobile_digits(value)


def _mobile_digits(value: str) -> str:
    digits = re.sub(r"[\s-]+", "", value)
    if digits.startswith("+86"):
        return digits[3:]
    # A bare 86 is a country code only when 11 digits follow: no mobile number starts with 86.
    return digits[2:] if digits.startswith("86") and len(digits) == 13 else digits


def _require(problem: str | None) -> None:
    if problem:
        raise ValueError(problem)


def reference_prefix(bundle_key: str) -> str:
    """The letters an application number starts with: PL, CC, EL, else the words' initials."""
    if bundle_key in PREFIXES:
        return PREFIXES[bundle_key]
    prefix = "".join(word[0] for word in re.split(r"[\s_-]+", bundle_key) if word).upper()
    if not (prefix.isascii() and prefix.isalnum()) or len(prefix) > 20:
        raise ValueError(f"no application number prefix can be made from {bundle_key!r}")
    return prefix


def issue_reference(session: Session, bundle_key: str, today: date) -> str:
    """The next application number of the day, e.g. PL20261128000123; flushes, never commits."""
    key = f"{reference_prefix(bundle_key)}{today:%Y%m%d}"
    # The caller's pending work is flushed first so its errors are not taken for a lost race.
    session.flush()
    for _ in range(_ATTEMPTS):
        value = _bump(session, key) or _create(session, key)
        if value is None:
            continue
        if value > 999_999:
            raise Conflict(f"all application numbers for {key} are used up")
        return f"{key}{value:06d}"
    raise Conflict(f"others were issuing application numbers for {key} at the same time; try again")


def _bump(session: Session, key: str) -> int | None:
    """The day's counter plus one, or None if the day has no counter yet."""
    # Read and write are one statement: its row lock (PostgreSQL) or write lock (SQLite) leaves no
    # gap for another writer, and moving the version makes any copy held elsewhere go stale.
    statement = (
        update(NumberSequence)
        .where(NumberSequence.key == key)
        .values(
            last_value=NumberSequence.last_value + 1,
            lock_version=NumberSequence.lock_version + 1,
        )
        .returning(NumberSequence.last_value)
    )
    return session.execute(statement).scalar_one_or_none()


def _create(session: Session, key: str) -> int | None:
    """1 from a new counter for the day, or None if someone else created it first."""
    # The SAVEPOINT keeps the caller's transaction alive when the insert loses. On SQLite it comes
    # after `_bump`'s UPDATE, which opened the transaction: a SAVEPOINT opening it instead would
    # commit the caller's work on release.
    try:
        with session.begin_nested():
            session.add(NumberSequence(key=key, last_value=1))
    except IntegrityError:
        return None
    return 1
