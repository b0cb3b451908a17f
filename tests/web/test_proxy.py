"""Behind the compose file's nginx the app sees the client's address and scheme."""

from dataclasses import replace

from flask import jsonify, request

from web import create_app


def _whoami(settings, **overrides):
    app = create_app(replace(settings, **overrides))
    app.add_url_rule("/whoami", "whoami", lambda: jsonify(request.remote_addr, request.scheme))
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    return app.test_client().get("/whoami", headers=headers).get_json()


def test_behind_one_proxy_the_forwarded_client_address_and_scheme_are_used(settings):
    """APPROVAL_PROXY_HOPS=1: X-Forwarded-For/-Proto from nginx are what the app sees."""
    assert _whoami(settings, proxy_hops=1) == ["203.0.113.7", "https"]


def test_without_a_proxy_forwarded_headers_are_ignored(settings):
    """Nobody can claim another address by sending X-Forwarded-For to the app directly."""
    assert _whoami(settings) == ["127.0.0.1", "http"]
