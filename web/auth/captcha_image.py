"""The picture test on the sign-in and registration forms.

Decision: the session (a signed but readable cookie) holds only an HMAC of the answer with a
nonce and the time it was drawn, never the answer itself. The cookie is on the client, so
taking the picture out of the session cannot stop an old cookie being sent again: the nonce is
written to `spent_tokens` when it is checked, and a nonce seen before is refused. An answer
older than ten minutes is refused too, which is how long a spent nonce is remembered.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from captcha.image import ImageCaptcha
from flask import Response, current_app, session

from engine import accounts, clock
from web.auth import bp
from web.extensions import db

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
    if not _spend(drawn["n"]):  # a replayed cookie: this picture was answered already
        return False
    return hmac.compare_digest(drawn["h"], _digest(drawn["n"], drawn["t"], answer))


def _spend(nonce: str) -> bool:
    lifetime = timedelta(seconds=LIFETIME_SECONDS)
    fresh = accounts.spend_token(db.session, f"captcha:{nonce}", lifetime)
    # Kept whatever the form does next (a refused form rolls its own changes back).
    db.session.commit()
    return fresh
