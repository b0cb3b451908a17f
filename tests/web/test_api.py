"""The JSON API: a token acts as its user, through the same checks and forms as the pages."""

from __future__ import annotations

import pytest

from engine import api_tokens
from tests.factories import application, review
from web.extensions import db


@pytest.fixture
def token(app, people):
    """`token("rui", "credit_reviewer")`: a user (created if needed) and an API token for them."""

    def issue(username: str, *groups: str) -> dict[str, str]:
        with app.app_context():
            if db.session.query(api_tokens.User).filter_by(username=username).first() is None:
                people(username, *groups)
            secret = api_tokens.issue(db.session, username, "test")
            db.session.commit()
        return {"Authorization": f"Bearer {secret}"}

    return issue


def test_without_a_valid_token_the_api_answers_401_in_json(client, token, app):
    """No header, a wrong token or a revoked one: 401 saying what to send."""
    for headers in ({}, {"Authorization": "Bearer sa_nope"}, {"Authorization": "Basic eDp5"}):
        response = client.get("/api/types", headers=headers)
        assert response.status_code == 401
        assert "Bearer" in response.get_json()["error"]
    headers = token("alice")
    assert client.get("/api/types", headers=headers).status_code == 200
    with app.app_context():
        assert api_tokens.revoke(db.session, "alice", "test") == 1
        db.session.commit()
    assert client.get("/api/types", headers=headers).status_code == 401


def test_an_applicant_applies_through_the_api_and_follows_it(client, token, deployed, work):
    """Wrong fields: 422 naming each; right ones: 201 with the number; progress by number."""
    alice = token("alice")
    assert "sample_approval" in [t["key"] for t in client.get("/api/types", headers=alice).json]
    form = client.get("/api/types/sample_approval/form", headers=alice).json
    assert form["schema"]["required"] == ["applicant_name", "amount", "purpose"]
    bad = {"type": "sample_approval", "data": application(amount=5, boss="me")}
    refused = client.post("/api/applications", json=bad, headers=alice)
    assert refused.status_code == 422
    assert {f["field"] for f in refused.json["fields"]} == {"amount", "boss"}
    created = client.post(
        "/api/applications", json={"type": "sample_approval", "data": application()}, headers=alice
    )
    assert created.status_code == 201
    reference = created.json["reference"]
    assert created.headers["Location"].endswith(f"/api/applications/{reference}")
    work.drain()
    followed = client.get(f"/api/applications/{reference}", headers=alice).json
    assert followed["reference"] == reference and followed["current"]
    assert client.get(f"/api/applications/{reference}", headers=token("bob")).status_code == 404
    mine = client.get("/api/applications", headers=alice).json
    assert [a["reference"] for a in mine["applications"]] == [reference]


def test_a_reviewer_works_the_inbox_through_the_api(client, token, deployed, work):
    """Inbox, claim, a refused decision (422), the decision, and a second completion (409)."""
    alice, rui = token("alice"), token("rui", "credit_reviewer")
    data = {"type": "sample_approval", "data": application()}
    reference = client.post("/api/applications", json=data, headers=alice).json["reference"]
    work.drain()
    assert client.get("/api/tasks", headers=alice).status_code == 403
    (task,) = client.get("/api/tasks", headers=rui).json["tasks"]
    assert task["reference"] == reference
    assert client.post(f"/api/tasks/{task['id']}/claim", headers=rui).json["assignee"] == "rui"
    shown = client.get(f"/api/tasks/{task['id']}", headers=rui).json
    assert shown["form_schema"]["required"]
    url = f"/api/tasks/{task['id']}/complete"
    wrong = client.post(url, json={"data": {"decision": "maybe"}}, headers=rui)
    assert wrong.status_code == 422 and wrong.json["fields"][0]["field"] == "decision"
    assert client.post(url, json={"data": review()}, headers=rui).status_code == 200
    again = client.post(url, json={"data": review()}, headers=rui)
    assert again.status_code == 409


def test_bad_inbox_filters_are_named(client, token):
    """A filter that is not a number or not a choice: 422 naming it."""
    response = client.get(
        "/api/tasks?min_amount=lots&due=someday", headers=token("rui", "credit_reviewer")
    )
    assert response.status_code == 422
    assert [f["field"] for f in response.json["fields"]] == ["min_amount"]


def test_an_administrator_issues_and_revokes_a_token_from_the_command_line(
    cli_runner, client, people
):
    """`approval api-token issue` prints a working token once; `revoke` stops it."""
    people("partner")
    issued = cli_runner("api-token", "issue", "partner", "--name", "crm")
    assert issued.exit_code == 0
    headers = {"Authorization": f"Bearer {issued.output.strip()}"}
    assert client.get("/api/types", headers=headers).status_code == 200
    revoked = cli_runner("api-token", "revoke", "partner", "--name", "crm")
    assert revoked.output.strip() == "1 token(s) revoked"
    assert client.get("/api/types", headers=headers).status_code == 401
    unknown = cli_runner("api-token", "issue", "nobody", "--name", "x")
    assert unknown.exit_code == 1 and "no active user `nobody`" in unknown.output
