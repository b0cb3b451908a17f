"""The picture test on the sign-in and registration forms.

Decision: the session (a signed but readable cookie) holds only an HMAC of the answer with a
nonce and the time it was drawn, never the answer itself; a check consumes it, and an answer
older than ten minutes is refused, so a solved picture cannot be replayed for long.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from captcha.image import ImageCaptcha
from flask import Response, current_app, session

from engine import clock
from web.auth import bp

#: No 0/O, 1/I/L: letters people cannot tell apart in a distorted picture.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 5
LIFETIME_SECONDS = 600
_KEY = "captcha"


def new_text() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def _digest(nonce: str, issued: int, answer: str) -> str:
    message = f"{nonce}:{issued}:{answer.strip().upper()}".encode()
    return hmac.new(current_app.secret_key.encode(), message, hashlib.sha256).hexdigest()


@bp.get("/captcha.png", endpoint="captcha")
def captcha_png() -> Response:
    text, nonce, issued = new_text(), secrets.token_hex(8), int(clock.now().timestamp())
    session[_KEY] = {"n": nonce, "t": issued, "h": _digest(nonce, issued, text)}
    image = ImageCaptcha(width=200, height=70).generate(text).getvalue()
    response = Response(image, mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response


def passed(answer: str) -> bool:
    """Whether `answer` is the text of the last picture shown; either way the picture is spent."""
    drawn = session.pop(_KEY, None)
    if not drawn or not answer:
        return False
    if clock.now().timestamp() - drawn["t"] > LIFETIME_SECONDS:
        return False
    return hmac.compare_digest(drawn["h"], _digest(drawn["n"], drawn["t"], answer))
