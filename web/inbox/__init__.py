"""The inbox area: reviewers' task list (filter, sort, page) and the task page where they claim,
release, transfer and decide.

Decision: views only parse, call one engine function (`engine.inbox`, `engine.review`,
`engine.runtime.complete_task`), commit and draw; who may see or act on a task is the engine's
rule (`engine.permissions`), and a race lost to a colleague is a message, never an error page.
"""

from flask import Blueprint

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

from web.inbox import actions, pages  # noqa: E402, F401  (the views register on `bp`)
