"""Flask extensions, unbound: `create_app` binds them, so tests can build many apps."""

from flask_babel import Babel
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from engine.db import Base

# Built on the engine's metadata so web, worker and CLI share one set of models.
db = SQLAlchemy(metadata=Base.metadata)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
