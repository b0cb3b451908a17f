"""The message centre: a person's in-app messages, newest first, and marking them read."""

from __future__ import annotations

from flask import redirect, render_template, url_for
from flask_login import current_user, login_required

from engine import notifications
from web.extensions import db
from web.track import bp


@bp.get("/messages")
@login_required
def messages():
    inbox = notifications.inbox_messages(db.session, current_user.username)
    return render_template("track/messages.html", messages=inbox)


@bp.post("/messages/<int:message_id>/read")
@login_required
def read(message_id: int):
    notifications.mark_read(db.session, current_user.username, message_id)
    db.session.commit()
    return redirect(url_for("track.messages"))


@bp.post("/messages/read")
@login_required
def read_all():
    notifications.mark_all_read(db.session, current_user.username)
    db.session.commit()
    return redirect(url_for("track.messages"))
