"""Flask extensions, unbound: `create_app` binds them, so tests can build many apps."""

from flask_sqlalchemy import SQLAlchemy

from engine.db import Base

# Built on the engine's metadata so web, worker and CLI share one set of models.
db = SQLAlchemy(metadata=Base.metadata)
