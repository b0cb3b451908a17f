"""Headers every answer carries: no framing by other sites, no type guessing, no foreign code.

Decision: the pages load scripts, styles, images and frames from this site only (bpmn-js is
served from /static, never a CDN), so the pages' Content-Security-Policy allows nothing else;
a script injected through some unescaped text would not run. Inline style attributes stay
allowed: the diagram viewer sets them.
"""

from __future__ import annotations

from flask import Flask, Response

POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "object-src 'none'",
        "frame-src 'self'",
        "frame-ancestors 'self'",
        "base-uri 'self'",
        "form-action 'self'",
    )
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
}


def register(app: Flask) -> None:
    @app.after_request
    def secure(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "text/html":  # a PDF shown inline needs the browser's viewer
            response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
