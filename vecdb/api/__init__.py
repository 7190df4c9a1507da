"""The REST layer: translates HTTP to service calls and errors to status codes; no index math, no LMDB."""

from vecdb.api.app import create_app
from vecdb.api.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
