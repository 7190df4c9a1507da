"""Remote client for a vecdb server: the same methods as ``vecdb.Client``, over HTTP.

from vecdb_client import RemoteClient
client = RemoteClient("http://127.0.0.1:6333", api_key=None)
"""

from vecdb_client.remote import RemoteClient, RemoteService

__all__ = ["RemoteClient", "RemoteService"]
