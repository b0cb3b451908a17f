"""The JSON Schema `format`s forms may use beyond the standard ones: Chinese identifiers.

`FORMAT_CHECKER` is Draft 2020-12's format checker plus `cn-resident-id`, `cn-uscc` and
`cn-mobile`. Decision: each of ours raises `FormatError` with the plain reason from
`engine.identifiers` itself, so the person filling the form reads "the check digit should be 5"
rather than jsonschema's generic "… is not a 'cn-resident-id'". Like the standard formats, ours
pass anything that is not a string: `type` is the keyword that refuses those.
"""

from __future__ import annotations

from collections.abc import Callable

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import FormatError

from engine import identifiers

#: format name → what it accepts, for people writing forms.
FORMATS: dict[str, str] = {
    "cn-resident-id": "Chinese resident identity number (GB 11643-1999): 18 characters, check "
    "digit, real birth date since 1900, province code; a lowercase x is accepted",
    "cn-uscc": "unified social credit code (GB 32100-2015): 18 characters without I, O, Z, S, V, "
    "registration authority, region code, check character",
    "cn-mobile": "mainland China mobile number: 11 digits from 13 to 19; +86, spaces and dashes "
    "are tolerated",
}

_PROBLEM_OF: dict[str, Callable[[str], str | None]] = {
    "cn-resident-id": identifiers.resident_id_problem,
    "cn-uscc": identifiers.uscc_problem,
    "cn-mobile": identifiers.mobile_problem,
}


def _checker(problem_of: Callable[[str], str | None]) -> Callable[[object], bool]:
    def check(instance: object) -> bool:
        if not isinstance(instance, str):
            return True
        problem = problem_of(instance)
        if problem:
            raise FormatError(problem)
        return True

    return check


def _build() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checkers.update(Draft202012Validator.FORMAT_CHECKER.checkers)
    for name, problem_of in _PROBLEM_OF.items():
        # raises=(): our FormatError must leave `check` as it is, carrying our message.
        checker.checks(name)(_checker(problem_of))
    return checker


FORMAT_CHECKER: FormatChecker = _build()
