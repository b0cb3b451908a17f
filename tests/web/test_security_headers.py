"""Every page forbids foreign scripts and framing by other sites; documents are not guessed at."""


def test_pages_allow_only_this_sites_scripts_and_no_foreign_framing(client):
    """The start page carries the policy: scripts from this site only, framed only by itself."""
    headers = client.get("/").headers
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'self'" in policy
    assert "unsafe-eval" not in policy and "http" not in policy
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_json_answers_are_not_type_guessed_either(client):
    """The health check (JSON) gets nosniff; the page policy is for HTML only."""
    headers = client.get("/healthz").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in headers
