"""vecdb's pydantic models, named as qdrant-client's (``VectorParams``, ``PointStruct``, ``Filter``, ...)."""

from vecdb.models.collections import *  # noqa: F401,F403
from vecdb.models.filters import *  # noqa: F401,F403
from vecdb.models.points import *  # noqa: F401,F403
from vecdb.models.query import *  # noqa: F401,F403
from vecdb.models.snapshots import *  # noqa: F401,F403
