"""The catalog: which collections and aliases a data directory holds.

A collection exists exactly when the catalog says so. Creating one builds its
directory first and commits the catalog entry last; deleting one removes the
entry first and the directory after. A crash in between therefore leaves at
worst an orphan directory, which :meth:`Catalog.orphans` reports so the
database can sweep it on the next open. Never a half-visible collection.
"""

from __future__ import annotations

import time

import orjson

from vecdb.storage.env import Environment


class Catalog:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self._collections = env.dbs["collections"]
        self._aliases = env.dbs["aliases"]

    # --- collections ---------------------------------------------------------------------

    def collection_names(self) -> list[str]:
        with self.env.read() as txn:
            return [k.decode() for k, _ in txn.cursor(db=self._collections)]

    def add_collection(self, name: str) -> None:
        entry = orjson.dumps({"created_at": time.time()})
        self.env.write(lambda txn: txn.put(name.encode(), entry, db=self._collections))

    def remove_collection(self, name: str) -> None:
        """Drop the collection and every alias that points to it, in one transaction."""

        def body(txn) -> None:  # type: ignore[no-untyped-def]
            txn.delete(name.encode(), db=self._collections)
            for alias, target in list(txn.cursor(db=self._aliases)):
                if target.decode() == name:
                    txn.delete(alias, db=self._aliases)

        self.env.write(body)

    # --- aliases -------------------------------------------------------------------------

    def aliases(self) -> dict[str, str]:
        with self.env.read() as txn:
            return {k.decode(): v.decode() for k, v in txn.cursor(db=self._aliases)}

    def replace_aliases(self, aliases: dict[str, str]) -> None:
        """Write the whole alias table at once, so a batch of alias actions is atomic."""

        def body(txn) -> None:  # type: ignore[no-untyped-def]
            txn.drop(self._aliases, delete=False)
            for alias, target in aliases.items():
                txn.put(alias.encode(), target.encode(), db=self._aliases)

        self.env.write(body)


CATALOG_DBS = ("collections", "aliases")
