"""vecdb: a vector similarity database with a Qdrant-compatible REST API and an embedded client."""

__version__ = "0.1.0"

from vecdb import errors, models  # noqa: E402
from vecdb.client import Client  # noqa: E402

__all__ = ["Client", "__version__", "errors", "models"]
