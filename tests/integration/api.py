"""People of the integration tests at a running web process: the JSON API over HTTP.

Each person is an account made in the test's database with an API token, and a keep-alive
`requests.Session` sending it; they apply, find their tasks in the inbox, claim and complete
them, and read the application's progress — what another system does (README, the JSON API).
"""

from __future__ import annotations

from typing import Any

import requests
from sqlalchemy import select

from engine import api_tokens, directory
from engine.models import User

TIMEOUT = 30


class Person:
    """One account's HTTP client: `Authorization: Bearer <its token>` on every request."""

    def __init__(self, base_url: str, username: str, token: str):
        self.base_url, self.username = base_url.rstrip("/"), username
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(self.base_url + path, params=params, timeout=TIMEOUT)

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return self.http.post(self.base_url + path, json=body, timeout=TIMEOUT)


def person(deployment, base_url: str, username: str, groups=(), **fields: Any) -> Person:
    """An account (made if it does not exist, `fields` set on it) with a new API token."""
    with deployment.sessions.begin() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = directory.add_user(session, username, list(groups))
        for name, value in fields.items():
            setattr(user, name, value)
        token = api_tokens.issue(session, username, "integration tests")
    return Person(base_url, username, token)


def apply(applicant: Person, key: str, data: dict) -> dict:
    """POST /api/applications; the answer (id, reference, status)."""
    answer = applicant.post("/api/applications", {"type": key, "data": data})
    assert answer.status_code == 201, answer.text
    return answer.json()


def decide(deployment, staff: Person, reference: str, element_id: str, data: dict) -> None:
    """Wait for the task to reach `staff`'s inbox (a worker puts it there), claim it and
    complete it; a 409 (a worker was changing the application) means try again."""

    def done() -> bool:
        inbox = staff.get("/api/tasks", page_size=100)
        assert inbox.status_code == 200, inbox.text
        for task in inbox.json()["tasks"]:
            if (task["reference"], task["element_id"]) == (reference, element_id):
                return _claim_and_complete(staff, task, data)
        return False

    deployment.wait(done, 60, f"{element_id} of {reference} for {staff.username}")


def _claim_and_complete(staff: Person, task: dict, data: dict) -> bool:
    claimed = staff.post(f"/api/tasks/{task['id']}/claim")
    if claimed.status_code == 409:
        return False
    assert claimed.status_code == 200 and claimed.json()["assignee"] == staff.username, claimed.text
    answer = staff.post(f"/api/tasks/{task['id']}/complete", {"data": data})
    if answer.status_code == 409:
        return False
    assert answer.status_code == 200 and answer.json()["state"] == "completed", answer.text
    return True


def state(someone: Person, reference: str) -> str:
    """The application's state as GET /api/applications/<reference> tells it."""
    answer = someone.get(f"/api/applications/{reference}")
    assert answer.status_code == 200, answer.text
    return answer.json()["state"]


def wait_completed(deployment, someone: Person, reference: str) -> None:
    deployment.wait(lambda: state(someone, reference) == "completed", 60, f"{reference} done")
