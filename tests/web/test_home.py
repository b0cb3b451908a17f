"""The start page and the health check."""

from engine import bundles
from web.extensions import db


def test_home_lists_deployed_approval_types(app, client, settings):
    """After a deploy the start page shows the approval type and its live version."""
    with app.app_context():
        bundles.deploy_path(db.session, settings, settings.processes_dir, "owner")
        db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert "sample_approval" in page and "v1" in page


def test_home_says_when_nothing_is_deployed(client):
    """With no deploy yet the page tells how to deploy."""
    assert "approval deploy processes/" in client.get("/").get_data(as_text=True)


def test_unknown_page_is_a_friendly_404(client):
    """A wrong URL answers 404 with a page, not a stack trace."""
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Traceback" not in response.get_data(as_text=True)


def test_health_answers_json(client):
    """/healthz checks the database and answers {"status": "ok"}."""
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_signed_in_people_land_in_their_own_area(client, sign_in):
    """Staff go to the task inbox, applicants to the approval types."""
    sign_in("rui", "credit_reviewer")
    assert client.get("/").headers["Location"].endswith("/inbox/")
    sign_in("alice")
    assert client.get("/").headers["Location"].endswith("/applications/")
