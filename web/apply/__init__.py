"""The applicant portal's submission side: choose a type, fill in, confirm, submit; my
applications, withdrawing one, my open tasks (supply information, sign), and documents.

Decision: every view states its audience (`applicant_required`, or ownership/visibility checked
by the engine) and calls one engine function; the pages live in the modules imported below.
"""

from flask import Blueprint

bp = Blueprint("apply", __name__, url_prefix="/applications")

from web.apply import documents, mine, submission, tasks  # noqa: E402, F401
