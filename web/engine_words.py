"""The engine's English messages, in the reader's language, wherever a page shows them.

Decision: the engine words each reason once, in English, with the values inside ("the check
digit should be 3", "this task is taken by rui"), and the web layer translates at the edge.
Each message the engine can show a person is listed here as its own English template, which is
also the msgid: its `%(name)s` places become the groups of a regular expression, so a sentence
is written once and the translation is filled with the values the engine put in. The list is
ordered most specific first ("must be at least 2 characters" before "must be at least 2").
In English the engine's text is shown untouched, and a message nothing here fits is shown as
the engine wrote it: English beats nothing. The JSON API never comes through here.
"""

from __future__ import annotations

import re

from flask_babel import get_locale, gettext

from engine.forms import TYPE_WORDS


def _(msgid: str) -> str:
    """Marks an English engine template as a msgid (translated later, by `words`)."""
    return msgid


#: The engine's templates, each its own msgid (engine/forms.py, form_formats.py via
#: identifiers.py, documents.py, permissions.py, inbox.py, runtime.py, applications.py, ...).
TEMPLATES: tuple[str, ...] = (
    # engine/forms.py: why a field of a form was refused
    _("is required"),
    _("must be one of %(choices)s"),
    _("must be at least %(n)s characters"),
    _("must be at most %(n)s characters"),
    _("must be at least %(n)s"),
    _("must be at most %(n)s"),
    _("must be more than %(n)s"),
    _("must be less than %(n)s"),
    _("must be a multiple of %(n)s"),
    _("needs at least %(n)s items"),
    _("takes at most %(n)s items"),
    _("must be accepted"),
    _("must be a finite number"),
    _("is not in the expected format"),
    _("is missing a required item"),
    _("this form has no such field"),
    _("the submitted data must be an object of fields"),
    _("this task has no form; no data may be submitted"),
    _("must be an object with text keys"),
    _("the submitted data is invalid"),
    # engine/identifiers.py, through the form formats cn-resident-id, cn-uscc, cn-mobile
    _("a resident identity number has 18 characters, not %(n)s"),
    _("the first 17 characters should be digits"),
    _("the last character should be a digit or X"),
    _("the region code %(code)s does not start with a province code"),
    _("the birth date %(date)s is not a real date"),
    _("the birth date %(date)s is in the future"),
    _("the birth date %(date)s is before 1900"),
    _("the check digit should be %(digit)s"),
    _("a unified social credit code has 18 characters, not %(n)s"),
    _(
        "character %(position)s (%(char)s) is not allowed: the code uses digits and upper-case "
        "letters except I, O, Z, S and V"
    ),
    _("the first character %(char)s is not a registration authority code"),
    _("characters 3 to 8 should be a region code of 6 digits, not %(code)s"),
    _("the check character should be %(char)s"),
    _("a mobile number should be written as text"),
    _("a mobile number may only hold digits, spaces, dashes and a leading +86"),
    _("a mobile number has 11 digits, not %(n)s"),
    _("a mobile number starts with 13 to 19"),
    # engine/documents.py
    _("%(file)s: the file is empty"),
    _("%(file)s: the file is larger than %(limit)s MB"),
    _("%(file)s: only PDF, JPEG and PNG files are accepted"),
    _("the file was refused"),
    _("no such document"),
    _("the document's file is missing"),
    # engine/permissions.py, engine/inbox.py, engine/runtime.py, engine/conflicts.py
    _("you cannot review or approve your own application"),
    _(
        "you already decided “%(task)s” of this application; another person must decide "
        "this level (segregation of duties)"
    ),
    _("this task is already completed"),
    _("this task is already cancelled"),
    _("this task belongs to another person"),
    _("this task is taken by %(name)s"),
    _("this task belongs to a group you are not in"),
    _("only the person who claimed a task can release it"),
    _("this task is yours alone; it cannot be released to a group"),
    _("this task is yours alone; it cannot be transferred"),
    _("`%(name)s` is not an active user"),
    _("no active user `%(name)s`"),
    _("choose a colleague other than yourself"),
    _("%(name)s is not in the group of this task"),
    _("this task can no longer be completed (the application moved on)"),
    _("this application is stopped by an error; it must be retried first"),
    _("application process #%(id)s is not in error"),
    _("someone else changed this application at the same moment; reload and try again"),
    _("someone else wrote to the same audit log at the same time; reload and try again"),
    _("no task #%(id)s"),
    _("no application process #%(id)s"),
    # engine/inbox.py: the inbox filter
    _("the inbox filter is invalid"),
    _("should be one of %(choices)s"),
    _("should be 1 or more"),
    _("should be between 1 and %(n)s"),
    _("should not be below the minimum amount"),
    # engine/applications.py, engine/progress.py, engine/notifications.py, engine/bundles.py
    _("`%(key)s` cannot be applied for: it does not start with an applicant form"),
    _("a reviewer has already started on this application; it can no longer be withdrawn"),
    _("this application is already completed; it cannot be withdrawn"),
    _("this application is already withdrawn"),
    _("no application #%(id)s"),
    _("no application %(reference)s"),
    _("application %(reference)s has no diagram"),
    _("no message #%(id)s"),
    _("no process `%(key)s` is deployed"),
    _("no such deployed version"),
    _("bundle `%(key)s` was deployed by someone else at the same moment; deploy again"),
    _("no service call #%(id)s"),
    _("no group `%(key)s`"),
    _("demo accounts are never created in production"),
    _("all application numbers for %(key)s are used up"),
    _("others were issuing application numbers for %(key)s at the same time; try again"),
    # engine/accounts.py and engine/second_factor.py
    _("wrong username or password"),
    _("this account is locked until %(time)s UTC"),
    _("this username is already taken"),
    _("use 3 to 40 lower-case letters, digits, dots, dashes or underscores"),
    _("the password needs at least 10 characters"),
    _("the password needs letters and digits"),
    _("the password must not contain the username"),
    _("required"),
    _("this is not an e-mail address"),
    _("SMS codes cannot be sent: no SMS gateway is configured"),
    _("SMS codes cannot be sent: no mobile phone number is on record"),
    _("wrong code"),
    _("this code has already been used; wait for the next one"),
    _("no code has been sent; ask for a new one"),
    _("the code has expired; ask for a new one"),
    _("too many wrong codes; ask for a new one"),
    _("a code was sent less than a minute ago; please wait"),
    _("use the code from your authenticator app"),
    _("the SMS could not be sent; try again later"),
    # the web layer's own English refusals: web/access.py's 403s, web/errors.py's 500
    _("this page is for applicants"),
    _("this page is for the bank's staff"),
    _("an unexpected error happened; it was logged"),
)

_KINDS = "|".join(sorted(map(re.escape, TYPE_WORDS.values()), key=len, reverse=True))

#: Messages whose English is not a template of their own: (pattern, msgid).
SHAPES: tuple[tuple[str, str], ...] = (
    # engine/forms.py joins the wanted JSON types with "or"; each is a word of its own below
    (rf"must be (?P<kind>{_KINDS})", _("must be %(kind)s")),
    (rf"must be (?P<kind>{_KINDS}) or (?P<other>{_KINDS})", _("must be %(kind)s or %(other)s")),
    # engine/forms.py's `const`: the one value allowed (after every other "must be …")
    (r"must be (?P<value>.+)", _("must be %(value)s")),
    # jsonschema's own words for the standard formats and keywords engine/forms.py passes on
    (r".+ is not a '(?P<format>[^']+)'", _("is not a valid %(format)s")),
    (r".+ is not valid under any of the given schemas", _("does not fit any allowed form")),
    (r".+ has non-unique elements", _("has the same item more than once")),
    # engine/inbox.py names the state; the reader only needs to know nobody claimed it
    (r"this task is \w+, not claimed", _("this task is not claimed")),
    # a task state other than the two templates above (engine/permissions.py, applications.py)
    (r"this task is already (?P<state>\w+)", _("this task is already %(state)s")),
    (
        r"service call #(?P<id>\d+) is (?P<state>\w+), not waiting for an answer",
        _("service call #%(id)s is %(state)s, not waiting for an answer"),
    ),
)

#: Words the engine puts into a message that are themselves translated (type and format names).
VALUES: dict[str, str] = {
    "text": _("text"),
    "a whole number": _("a whole number"),
    "a number": _("a number"),
    "yes or no": _("yes or no"),
    "a list": _("a list"),
    "a group of fields": _("a group of fields"),
    "date": _("date"),
    "date-time": _("date and time"),
    "time": _("time"),
    "email": _("e-mail address"),
    "uri": _("web address"),
    "ready": _("waiting to be claimed"),
    "claimed": _("claimed"),
    "completed": _("completed"),
    "cancelled": _("cancelled"),
    "pending": _("pending"),
    "waiting": _("waiting"),
    "done": _("done"),
    "failed": _("failed"),
}
_TRANSLATED_GROUPS = frozenset({"kind", "other", "format", "state"})


def _pattern(template: str) -> re.Pattern[str]:
    """The template as a pattern: literal text, each `%(name)s` a group of that name."""
    parts = re.split(r"%\((\w+)\)s", template)
    literal = [re.escape(text) for text in parts[0::2]]
    groups = [f"(?P<{name}>.+?)" for name in parts[1::2]]
    pieces = [piece for pair in zip(literal, [*groups, ""], strict=True) for piece in pair]
    return re.compile("".join(pieces), re.DOTALL)


# Templates first (their literal text is the most specific), then the shapes, where a catch-all
# such as "must be …" comes after every narrower pattern of the same words.
_TABLE: tuple[tuple[re.Pattern[str], str], ...] = (
    *((_pattern(t), t) for t in TEMPLATES),
    *((re.compile(p, re.DOTALL), msgid) for p, msgid in SHAPES),
)


def _in_english() -> bool:
    locale = get_locale()
    return locale is None or locale.language == "en"


def _value(group: str, text: str) -> str:
    if group in _TRANSLATED_GROUPS and text in VALUES:
        return gettext(VALUES[text])
    return text


def words(message: str) -> str:
    """`message` from the engine in the reader's language; unchanged in English or when no
    template fits it."""
    if _in_english():
        return message
    for pattern, msgid in _TABLE:
        if found := pattern.fullmatch(message):
            values = {name: _value(name, text) for name, text in found.groupdict().items()}
            return gettext(msgid, **values)
    return message
