"""Why the engine refused: its English reasons (`engine.permissions`, `engine.inbox`,
`engine.runtime`) in the reader's language.

Decision: the engine words its refusals once, in English, with names inside; the inbox
recognises the ones a reviewer meets and translates them, and shows any other as it is.
"""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

#: (the engine's words, with the names as groups; the same in the reader's language)
_KNOWN = [
    (r"this task is already completed", _l("this task is already completed")),
    (r"this task is already cancelled", _l("this task is already cancelled")),
    (r"this task is taken by (?P<name>.+)", _l("this task is taken by %(name)s")),
    (
        r"you cannot review or approve your own application",
        _l("you cannot review or approve your own application"),
    ),
    (
        r"you already decided “(?P<task>.+)” of this application",
        _l(
            "you already decided “%(task)s” of this application; another person must decide "
            "this level (segregation of duties)"
        ),
    ),
    (
        r"this task belongs to a group you are not in",
        _l("this task belongs to a group you are not in"),
    ),
    (r"this task is \w+, not claimed", _l("this task is not claimed")),
    (
        r"only the person who claimed a task can release it",
        _l("only the person who claimed a task can release it"),
    ),
    (r"`(?P<name>.+)` is not an active user", _l("%(name)s is not an active user")),
    (r"choose a colleague other than yourself", _l("choose a colleague other than yourself")),
    (
        r"(?P<name>.+) is not in the group of this task",
        _l("%(name)s is not in the group of this task"),
    ),
    (
        r"this task can no longer be completed",
        _l("this task can no longer be completed (the application moved on)"),
    ),
    (
        r"this application is stopped by an error",
        _l("this application is stopped by an error; it must be retried first"),
    ),
    (
        r"someone else changed this application at the same moment",
        _l("someone else changed this application at the same moment; reload and try again"),
    ),
]
_PATTERNS = [(re.compile(pattern), words) for pattern, words in _KNOWN]


def explain(reason: str | Exception | None) -> str:
    """The reason in the reader's language when it is a known one; otherwise as given."""
    if reason is None:
        return ""
    text = str(reason)
    for pattern, words in _PATTERNS:
        if found := pattern.match(text):
            names = found.groupdict()
            return str(words) % names if names else str(words)
    return text
