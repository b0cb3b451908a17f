"""The track area: an application's progress and result, and the in-app message centre.

Decision: applicants and staff share these pages; who may read an application is decided by the
engine (`engine.progress.find`), which answers "not found" alike for an unknown number and for
someone else's, so application numbers cannot be probed.
"""

from flask import Blueprint

bp = Blueprint("track", __name__, url_prefix="/track")

from web.track import messages, pages  # noqa: E402, F401  (the views register on `bp`)
