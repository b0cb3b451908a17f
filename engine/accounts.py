"""Accounts: passwords, self-registration, and signing in with a lock-out after repeated failures.

Decision: passwords are Argon2id hashes (argon2-cffi), re-hashed on the next successful sign-in
whenever the parameters change. A failed sign-in never says whether the username exists (one
message for both), and `login_max_failures` failures in a row lock the account for
`lockout_minutes`, during which even the right password is refused. Wrong second-factor codes
count toward the same lock-out, so the counter is reset only when a sign-in is complete (after
the code, for a person who has one), never by the password alone. Every outcome is written to
the person's audit stream `user:<username>`, in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit, clock, directory, identifiers
from engine.config import Settings
from engine.errors import ApprovalError, FieldError, Forbidden, Invalid
from engine.models import Group, Membership, SpentToken, User

MIN_PASSWORD = 10
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
_hasher = PasswordHasher()
#: Verified against when the username is unknown, so both failures take the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

BAD_LOGIN = "wrong username or password"
USERNAME_TAKEN = "this username is already taken"
USERNAME_FORM = "use 3 to 40 lower-case letters, digits, dots, dashes or underscores"
PASSWORD_SHORT = "the password needs at least 10 characters"
PASSWORD_WEAK = "the password needs letters and digits"
PASSWORD_IS_NAME = "the password must not contain the username"
REQUIRED = "required"
EMAIL_FORM = "this is not an e-mail address"
NOT_TEXT = "is not in the expected format"
#: The widths of the columns the registration form fills.
DISPLAY_NAME_MAX, EMAIL_MAX, PHONE_MAX = 120, 200, 32


def too_long(limit: int) -> str:
    return f"must be at most {limit} characters"


def has_control_characters(text: str) -> bool:
    """Whether `text` holds a NUL, line break or other control character (never in a name)."""
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


class AccountLocked(ApprovalError):
    """Too many failed sign-ins: refused until `until` whatever the password."""

    def __init__(self, until: datetime):
        super().__init__(f"this account is locked until {until:%Y-%m-%d %H:%M} UTC")
        self.until = until


def _audit(session: Session, settings: Settings, username: str, kind: str, **data) -> None:
    audit.append(session, key=settings.secret_key, stream=audit.user_stream(username),
                 kind=kind, actor=username, data=data)  # fmt: skip


def record(session: Session, settings: Settings, user: User, kind: str, **data) -> None:
    """Write an account event (logout, a second factor passed...) to the person's stream."""
    _audit(session, settings, user.username, kind, **data)


# --- passwords ----------------------------------------------------------------------------------


def password_problems(password: str, username: str = "") -> list[str]:
    """Why `password` is too weak (empty when it will do)."""
    if len(password or "") < MIN_PASSWORD:
        return [PASSWORD_SHORT]
    problems = []
    if not (any(c.isalpha() for c in password) and any(c.isdigit() for c in password)):
        problems.append(PASSWORD_WEAK)
    if username and username.lower() in password.lower():
        problems.append(PASSWORD_IS_NAME)
    return problems


def set_password(user: User, password: str) -> None:
    problems = password_problems(password, user.username)
    if problems:
        raise Invalid([FieldError("password", p) for p in problems])
    user.password_hash = _hasher.hash(password)


def _password_matches(user: User | None, password: str) -> bool:
    stored = user.password_hash if user is not None else None
    try:
        # An unknown user costs a verification too, so timing does not tell who exists.
        matches = _hasher.verify(stored or _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return False
    return matches and stored is not None


# --- registration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applicant:
    """What a person gives to register themselves."""

    username: str
    password: str
    display_name: str
    phone: str = ""
    email: str = ""


def _username_problem(session: Session, username: str) -> str | None:
    if not 3 <= len(username) <= 40 or not set(username) <= USERNAME_CHARS:
        return USERNAME_FORM
    taken = session.scalar(select(func.count()).where(func.lower(User.username) == username))
    return USERNAME_TAKEN if taken else None


def _text_problem(text: str, limit: int) -> str | None:
    """Why a free-text field cannot be stored (too wide for its column, control characters)."""
    if len(text) > limit:
        return too_long(limit)
    return NOT_TEXT if has_control_characters(text) else None


def _phone_problem(phone: str) -> str | None:
    if len(phone) > PHONE_MAX:
        return too_long(PHONE_MAX)
    return identifiers.mobile_problem(phone) if phone else None


def _email_problem(email: str) -> str | None:
    if len(email) > EMAIL_MAX:
        return too_long(EMAIL_MAX)
    malformed = "@" not in email or " " in email.strip() or has_control_characters(email)
    return EMAIL_FORM if email and malformed else None


def _registration_errors(session: Session, form: Applicant) -> list[FieldError]:
    errors = []
    if problem := _username_problem(session, form.username):
        errors.append(FieldError("username", problem))
    errors += [FieldError("password", p) for p in password_problems(form.password, form.username)]
    if not form.display_name.strip():
        errors.append(FieldError("display_name", REQUIRED))
    elif problem := _text_problem(form.display_name.strip(), DISPLAY_NAME_MAX):
        errors.append(FieldError("display_name", problem))
    if problem := _phone_problem(form.phone):
        errors.append(FieldError("phone", problem))
    if problem := _email_problem(form.email):
        errors.append(FieldError("email", problem))
    return errors


def register_applicant(
    session: Session,
    settings: Settings,
    username: str,
    password: str,
    display_name: str,
    phone: str = "",
    email: str = "",
) -> User:
    """A new applicant (member of no group), or `Invalid` listing every field to mend."""
    form = Applicant(username.strip().lower(), password, display_name, phone.strip(), email)
    errors = _registration_errors(session, form)
    if errors:
        raise Invalid(errors)
    phone = identifiers.normalise_mobile(form.phone) if form.phone else None
    user = User(username=form.username, display_name=form.display_name.strip(), phone=phone,
                email=form.email.strip() or None)  # fmt: skip
    set_password(user, password)
    session.add(user)
    session.flush()
    _audit(session, settings, user.username, "registered")
    return user


# --- signing in --------------------------------------------------------------------------------


def authenticate(session: Session, settings: Settings, username: str, password: str) -> User:
    """The user whose password this is; `Invalid` (one message) or `AccountLocked` otherwise.

    For a person without a second factor this completes the sign-in (the failure count starts
    again); anybody else is complete only once `signed_in` is called after their code."""
    name = (username or "").strip().lower()
    if has_control_characters(name):  # no username holds one (and PostgreSQL refuses a NUL)
        _password_matches(None, password)
        raise Invalid([FieldError("password", BAD_LOGIN)])
    user = session.scalar(select(User).where(func.lower(User.username) == name, User.is_active))
    now = clock.now()
    if user is not None and locked(user):
        _password_matches(None, password)  # the same time as any other answer
        _audit(session, settings, user.username, "login_refused_locked")
        raise AccountLocked(user.locked_until)
    if not _password_matches(user, password):
        if user is not None:
            _count_failure(session, settings, user, now)
        raise Invalid([FieldError("password", BAD_LOGIN)])
    if user.second_factor == "none":
        user.failed_logins = 0
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    _audit(session, settings, user.username, "password_accepted")
    return user


def signed_in(session: Session, settings: Settings, user: User, **data) -> None:
    """The sign-in is complete (password and, if any, second factor): failures start again."""
    user.failed_logins, user.locked_until = 0, None
    _audit(session, settings, user.username, "login", **data)


def signed_out(session: Session, settings: Settings, user: User) -> None:
    """Signing out ends every session of `user` signed in so far, wherever its cookie is kept."""
    user.session_version = (user.session_version or 0) + 1
    _audit(session, settings, user.username, "logout")


def confirm_password(session: Session, settings: Settings, user: User, password: str) -> None:
    """A signed-in person proves it is still them before a change to how they sign in; a wrong
    password counts toward the lock-out like one at the sign-in form."""
    if locked(user):
        raise AccountLocked(user.locked_until)
    if not _password_matches(user, password):
        _count_failure(session, settings, user, clock.now())
        raise Invalid([FieldError("password", BAD_LOGIN)])
    _audit(session, settings, user.username, "password_confirmed")


def _count_failure(session: Session, settings: Settings, user: User, now: datetime) -> None:
    user.failed_logins = (user.failed_logins or 0) + 1
    _audit(session, settings, user.username, "login_failed", failures=user.failed_logins)
    if user.failed_logins >= settings.login_max_failures:
        user.failed_logins, user.locked_until = 0, now + timedelta(minutes=settings.lockout_minutes)
        _audit(session, settings, user.username, "locked", until=user.locked_until.isoformat())
    session.flush()


def second_factor_failed(session: Session, settings: Settings, user: User) -> None:
    """A wrong second-factor code counts toward the lock-out like a wrong password."""
    _count_failure(session, settings, user, clock.now())


def spend_token(session: Session, token: str, lifetime: timedelta) -> bool:
    """Mark a one-time value (a captcha's nonce) used: False if it was used before. Values
    older than `lifetime` are forgotten, since the caller refuses them as expired anyway."""
    now = clock.now()
    session.execute(delete(SpentToken).where(SpentToken.spent_at < now - lifetime))
    if session.get(SpentToken, token) is not None:
        return False
    try:
        with session.begin_nested():  # two requests with the same value: only one wins
            session.add(SpentToken(token=token, spent_at=now))
    except IntegrityError:
        return False
    return True


def add_user(session: Session, settings: Settings, username: str, groups: list[str],
             password: str, display_name: str = "") -> User:  # fmt: skip
    """A person created by an administrator, in existing groups, with a password."""
    name = username.strip().lower()
    if problem := _username_problem(session, name):
        raise Invalid([FieldError("username", problem)])
    user = directory.add_user(session, name, groups, display_name)
    set_password(user, password)
    _audit(session, settings, name, "created", groups=sorted(groups))
    return user


# --- demo people ---------------------------------------------------------------------------------

#: The password of every demo account (never created in production).
DEMO_PASSWORD = "demo-pass-2026"

#: username, display name, groups, fixed TOTP secret (None: an applicant without a second factor).
DEMO_USERS = [
    ("alice", "王丽 Alice Wang", [], None),
    ("bob", "李波 Bob Li", [], None),
    ("credit", "陈信 Chen Xin", ["credit_reviewer"], "ZMCYK7NV3FLDAH64ZILANTTG5AFZU5CC"),
    ("risk", "冯险 Feng Xian", ["risk_reviewer"], "6ZQAS4EFPKJBDNLZISAVWAYB2XMUZIH2"),
    ("compliance", "何规 He Gui", ["compliance_reviewer"], "PQP4DWE72XVCPUGQZPDORGDDVBCAB35V"),
    ("credit_lead", "周信 Zhou Xin", ["credit_supervisor"], "DHSVF6WD63MEHYFBJY7TMVRE45EMFJU3"),
    ("risk_lead", "吴险 Wu Xian", ["risk_supervisor"], "3QQS73ZW5KYRSON22WWBKQ7Z6NOUUE7E"),
    (
        "compliance_lead",
        "郑规 Zheng Gui",
        ["compliance_supervisor"],
        "KJ2E44OSU2NBBCN7ZF36DUPJUL4PKDG3",
    ),
    ("manager", "孙行 Sun Hang", ["branch_manager"], "UTSONRZG2CVWKHNDGLW74KQOVFSUYIXL"),
    ("committee", "钱委 Qian Wei", ["credit_committee"], "UAVO5EIDK65DA5MA4VMUU6HPVTGWQAN3"),
    ("cards", "赵卡 Zhao Ka", ["card_center"], "4EBNEW5CBW5RCI3RYVRNUEJ4ZYSRDB5P"),
    ("owner", "刘程 Liu Cheng", ["process_owner"], "UXRH7U23NWZBSSDS7WS5FIQLA7JZ3RCC"),
    ("admin", "管理员 Administrator", ["admin"], "SE4AFNLTNSOGUO4GY35SN4DSVF2PZOE4"),
]

#: The applicants' phone numbers and addresses (SMS and e-mail go to the configured stubs).
DEMO_CONTACTS = {
    "alice": ("13800138001", "alice@example.com"),
    "bob": ("13900139002", "bob@example.com"),
}


def demo_secret(username: str) -> str | None:
    """The fixed TOTP secret of a demo account, None for anybody else."""
    return next((secret for name, _, _, secret in DEMO_USERS if name == username), None)


def ensure_demo_users(session: Session, settings: Settings) -> list[User]:
    """Create or reset every demo account (idempotent); refused in production."""
    if settings.production:
        raise Forbidden("demo accounts are never created in production")
    return [_ensure_demo_user(session, *row) for row in DEMO_USERS]


def _ensure_demo_user(session: Session, name: str, display: str, groups: list[str],
                      secret: str | None) -> User:  # fmt: skip
    user = session.scalar(select(User).where(User.username == name))
    if user is None:
        user = directory.add_user(session, name, [], display)
    user.display_name, user.is_active = display, True
    if secret:  # staff: the documented secret, so a tester can add it to an app
        user.second_factor, user.totp_secret = "totp", secret
    else:
        user.phone, user.email = DEMO_CONTACTS[name]
    user.failed_logins, user.locked_until = 0, None
    if not _password_matches(user, DEMO_PASSWORD):
        user.password_hash = _hasher.hash(DEMO_PASSWORD)
    wanted = {g.id for g in session.scalars(select(Group).where(Group.key.in_(groups)))}
    session.execute(delete(Membership).where(Membership.user_id == user.id))
    session.add_all(Membership(user_id=user.id, group_id=gid) for gid in wanted)
    session.flush()
    session.refresh(user)
    return user


def locked(user: User) -> bool:
    return user.locked_until is not None and user.locked_until > clock.now()
