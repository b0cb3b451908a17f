"""`screening.credit_bureau`: the applicant's credit report from the external credit bureau.

Parameters: `id_number` (a person) or `uscc` (an enterprise; used when given) and `name`.
The bureau gets `POST {"id_type": "resident_id" | "uscc", "id", "name"}` at
`APPROVAL_CREDIT_BUREAU_URL` and answers `{"score": 300–850, "overdue_accounts",
"total_debt", "monthly_debt_payment"}`. Result: those four and `"available": True,
"message": ""`.

Decision: a bureau that is down (no address configured, no connection, no answer within
`APPROVAL_HTTP_TIMEOUT`, HTTP 5xx / 408 / 429, an answer that is not a credit report) is retried
with back-off, and on the `ATTEMPTS`-th attempt the call *succeeds* with `"available": False` and
the reason in `message`: the application goes on to manual review, flagged, instead of stopping
in error or being declined for something the applicant did not do. A refused query (another
4xx) will not get better by asking again: it fails at once with the bureau's message.
"""

from __future__ import annotations

import math
from typing import Any

import requests

from engine.config import Settings
from engine.identifiers import normalise_resident_id, normalise_uscc
from engine.operators import CallInfo, OperatorFailed, operator

#: The attempt that gives up and answers "unavailable" (the machinery allows more).
ATTEMPTS = 3
SCORE_RANGE = (300, 850)
#: Client errors that say "not now" rather than "not this query".
_TRANSIENT = frozenset({408, 429})
_FIELDS = ("score", "overdue_accounts", "total_debt", "monthly_debt_payment")


class BureauDown(Exception):
    """The bureau gave no usable answer; asking again later may help."""


@operator("screening.credit_bureau")
def credit_bureau(params: dict[str, Any], call: CallInfo) -> dict[str, Any]:
    """The credit report of the person or enterprise, or `available: False` once it gave up."""
    query = _query(params)
    try:
        report = _ask(call.settings, query)
    except BureauDown as err:
        if call.attempt < ATTEMPTS:
            raise OperatorFailed(f"credit bureau unavailable: {err}", retry=True) from None
        return {
            "available": False,
            **dict.fromkeys(_FIELDS),
            "message": f"bureau unavailable: {err}",
        }
    return {"available": True, **report, "message": ""}


def _query(params: dict[str, Any]) -> dict[str, str]:
    name, uscc, id_number = params.get("name"), params.get("uscc"), params.get("id_number")
    if not isinstance(name, str) or not name.strip():
        raise OperatorFailed("screening.credit_bureau needs the `name` to query", retry=False)
    try:
        if isinstance(uscc, str) and uscc.strip():
            return {"id_type": "uscc", "id": normalise_uscc(uscc.strip()), "name": name.strip()}
        if isinstance(id_number, str) and id_number.strip():
            number = normalise_resident_id(id_number.strip())
            return {"id_type": "resident_id", "id": number, "name": name.strip()}
    except ValueError as err:
        raise OperatorFailed(f"screening.credit_bureau: {err}", retry=False) from None
    message = "screening.credit_bureau needs `id_number` (a person) or `uscc` (an enterprise)"
    raise OperatorFailed(message, retry=False)


def _ask(settings: Settings, query: dict[str, str]) -> dict[str, Any]:
    if not settings.credit_bureau_url:
        raise BureauDown("no bureau address is configured (APPROVAL_CREDIT_BUREAU_URL)")
    try:
        answer = requests.post(
            settings.credit_bureau_url, json=query, timeout=settings.http_timeout
        )
    except requests.Timeout:
        raise BureauDown(f"no answer within {settings.http_timeout:g} s") from None
    except requests.ConnectionError:
        raise BureauDown("could not connect") from None
    except requests.RequestException as err:
        raise BureauDown(f"{type(err).__name__}: {err}") from None
    if answer.status_code >= 500 or answer.status_code in _TRANSIENT:
        raise BureauDown(f"HTTP {answer.status_code}")
    if 400 <= answer.status_code < 500:
        message = f"the credit bureau refused the query (HTTP {answer.status_code})"
        raise OperatorFailed(f"{message}: {_message(answer)}", retry=False)
    if answer.status_code != 200:
        raise BureauDown(f"unexpected HTTP {answer.status_code}")
    return _report(answer)


def _message(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:300] or "no message"
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key][:300]
    return str(body)[:300]


def _report(answer: requests.Response) -> dict[str, Any]:
    """The four figures of a well-formed answer; BureauDown naming what is wrong otherwise."""
    try:
        body = answer.json()
    except ValueError:
        raise BureauDown("malformed answer: not JSON") from None
    if not isinstance(body, dict):
        raise BureauDown("malformed answer: not a JSON object")
    for key in _FIELDS:
        problem = _figure_problem(key, body.get(key))
        if problem:
            raise BureauDown(f"malformed answer: {problem}")
    return {key: body[key] for key in _FIELDS}


def _figure_problem(key: str, value: Any) -> str | None:
    if value is None:
        return f"`{key}` is missing"
    whole = key in ("score", "overdue_accounts")
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        return f"`{key}` should be {'a whole number' if whole else 'a number'}, not {value!r}"
    low, high = SCORE_RANGE if key == "score" else (0, math.inf)
    if not (math.isfinite(value) and low <= value <= high):
        return f"`{key}` {value} is out of range"
    return None
