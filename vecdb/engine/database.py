"""A data directory: its ownership lock, its catalog and the open collections.

Layout::

    <root>/.lock                 ownership lock (see storage/lock.py)
    <root>/catalog/              LMDB: collection names and aliases
    <root>/collections/<name>/   one LMDB environment per collection
    <root>/.trash/               directories on their way out (and restores being unpacked)
    <root>/snapshots/<name>/     snapshot files of a collection (see snapshots.py)

Every collection is opened when the database opens, so a request never pays
for loading one.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Container
from pathlib import Path
from typing import Any, BinaryIO, Optional

from vecdb.engine.backup.archive import unpack
from vecdb.engine.backup.store import SNAPSHOTS_DIR, SnapshotStore, stored_checksum
from vecdb.engine.checkpoints import INDEX_DIR, checkpoint_files
from vecdb.engine.collection import Collection, InUse
from vecdb.engine.follow import Worker, file_identity
from vecdb.engine.settings import raise_missing_collection, settings_from_create
from vecdb.engine.vector_names import Removal, edit_vectors
from vecdb.errors import AlreadyExists, InvalidInput, NotFound
from vecdb.limits import NO_LIMITS, Limits
from vecdb.models.collections import (
    AliasDescription,
    ChangeAliasesOperation,
    CreateAliasOperation,
    CreateCollection,
    DeleteAliasOperation,
    RenameAliasOperation,
)
from vecdb.models.snapshots import SnapshotDescription
from vecdb.names import check_name
from vecdb.storage.catalog import CATALOG_DBS, Catalog
from vecdb.storage.env import DEFAULT_MAX_MAP_SIZE, Environment, storage_errors
from vecdb.storage.lock import DataDirLock

log = logging.getLogger(__name__)


def changed_aliases(
    aliases: dict[str, str], collections: Container[str], req: ChangeAliasesOperation
) -> dict[str, str]:
    """``aliases`` (alias: collection) after every action of ``req``, checked against the ``collections``
    there are: a new copy, or an error and nothing changed (the batch is atomic). Shared with the cluster
    service, which keeps its aliases in the shard map."""
    out = dict(aliases)
    for action in req.actions:
        if isinstance(action, CreateAliasOperation):
            alias, target = action.create_alias.alias_name, action.create_alias.collection_name
            check_name(alias, "alias")
            if target not in collections:
                raise raise_missing_collection(target)
            if alias in collections:
                raise AlreadyExists(f"Alias `{alias}` already exists: a collection has that name!")
            out[alias] = target
        elif isinstance(action, DeleteAliasOperation):
            if out.pop(action.delete_alias.alias_name, None) is None:
                raise NotFound(f"Alias `{action.delete_alias.alias_name}` doesn't exist!")
        elif isinstance(action, RenameAliasOperation):
            old, new = action.rename_alias.old_alias_name, action.rename_alias.new_alias_name
            check_name(new, "alias")
            if old not in out:
                raise NotFound(f"Alias `{old}` doesn't exist!")
            if new in collections:
                raise AlreadyExists(f"Alias `{new}` already exists: a collection has that name!")
            out[new] = out.pop(old)
    return out


class Database:
    def __init__(
        self,
        root: str | Path,
        *,
        max_map_size: int = DEFAULT_MAX_MAP_SIZE,
        limits: Limits = NO_LIMITS,
        worker: Optional[Worker] = None,
    ) -> None:
        """``worker``: this process is one of ``vecdb serve --workers``, whose supervisor holds the
        directory's lock; a follower (``worker.follower``) reads what the primary writes."""
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file = DataDirLock(self.root) if worker is None else None
        self.worker = worker
        self._catalog_txn = -1
        self._max_map_size = max_map_size
        self._limits = limits
        self._mutex = threading.RLock()  # guards the two dicts below and catalog changes
        self.snapshots = SnapshotStore(self.root / SNAPSHOTS_DIR)
        try:
            self.catalog = Catalog(Environment(self.root / "catalog", CATALOG_DBS))
            self._collections: dict[str, Collection] = {}
            self._aliases: dict[str, str] = self.catalog.aliases()
            self._sweep_and_open()
        except BaseException:
            if self._lock_file is not None:
                self._lock_file.release()
            raise

    @property
    def _collections_dir(self) -> Path:
        return self.root / "collections"

    def _trash(self, label: str) -> Path:
        """A fresh path in ``.trash/`` (emptied at open) for a directory on its way out or being staged."""
        folder = self.root / ".trash"
        folder.mkdir(exist_ok=True)
        return folder / f"{label}.{uuid.uuid4().hex}"

    def _open(self, name: str, path: Path) -> Collection:
        return Collection.open(name, path, max_map_size=self._max_map_size, limits=self._limits, worker=self.worker)

    @property
    def follows(self) -> bool:
        """True in a follower process (``vecdb serve --workers``): it reads what the primary writes."""
        return self.worker is not None and self.worker.follower

    def _sweep_and_open(self) -> None:
        """Open every catalogued collection; remove directories a crash left behind."""
        if self.follows:
            self.catalog.env.follower = True
            self._follow_catalog()
            return
        shutil.rmtree(self.root / ".trash", ignore_errors=True)
        self.snapshots.sweep()
        self._collections_dir.mkdir(exist_ok=True)
        names = set(self.catalog.collection_names())
        for child in self._collections_dir.iterdir():
            if child.name not in names:
                log.warning("removing %s: not in the catalog (left by an interrupted create)", child)
                shutil.rmtree(child, ignore_errors=True)
        for name in sorted(names):
            path = self._collections_dir / name
            if not path.exists():
                log.error("collection %s is in the catalog but its directory is missing; dropping it", name)
                self.catalog.remove_collection(name)
                continue
            self._collections[name] = self._open(name, path)

    # --- collections ---------------------------------------------------------------------

    def resolve(self, name: str) -> str:
        """A collection name, or an alias resolved to one."""
        if name in self._collections:
            return name
        return self._aliases.get(name, name)

    def get(self, name: str) -> Collection:
        if self.follows:
            return self._followed(name)
        coll = self._collections.get(self.resolve(name))
        if coll is None:
            raise raise_missing_collection(name)
        return coll

    def peek(self, name: str) -> Optional[Collection]:
        """The collection as this process last saw it (a follower: not caught up first), or None: for
        decisions a stale answer cannot make wrong, such as where a search runs."""
        return self._collections.get(self.resolve(name))

    # --- a follower process (vecdb serve --workers) --------------------------------------

    def _refuse_if_follower(self) -> None:
        """A follower forwards every change to the primary; one reaching the engine here is a bug."""
        if self.follows:
            raise RuntimeError(f"{self.root}: a follower process never writes (its primary does)")

    def _followed(self, name: str) -> Collection:
        """The collection, caught up with every commit the primary made before this call."""
        self._follow_catalog()
        coll = self._collections.get(self.resolve(name))
        if coll is None:
            raise raise_missing_collection(name)
        assert coll.follower is not None
        if coll.follower.sync():
            return coll
        with self._mutex:  # settings changed, or too far behind to replay: read it whole again
            if self._collections.get(coll.name) is coll:
                log.info("collection %s changed beyond replay: reopening it", coll.name)
                coll.close(checkpoint=False)
                del self._collections[coll.name]
                self._collections[coll.name] = self._open(coll.name, coll.path)
            return self._collections[coll.name]

    def _follow_catalog(self) -> None:
        """Open the collections the primary created, drop those it deleted, reopen those it replaced."""
        with self.catalog.env.read() as txn:
            if txn.id() == self._catalog_txn:
                return
        with self._mutex:
            with self.catalog.env.read() as txn:
                seen = txn.id()
            if seen == self._catalog_txn:
                return
            names = set(self.catalog.collection_names())
            for name, coll in list(self._collections.items()):
                path = self._collections_dir / name
                if name not in names or coll.identity != file_identity(path):
                    coll.close(checkpoint=False)
                    del self._collections[name]
            for name in sorted(names - set(self._collections)):
                path = self._collections_dir / name
                if (path / "data.mdb").exists():
                    self._collections[name] = self._open(name, path)
            self._aliases = self.catalog.aliases()
            self._catalog_txn = seen

    def use(self, name: str) -> InUse:
        """``with db.use(name) as coll``: the collection for one request: a delete waits for the request
        to finish, and a request that starts after the delete gets "not found", never a closed store."""
        return self.get(name).in_use()

    def names(self) -> list[str]:
        if self.follows:
            self._follow_catalog()
        return sorted(self._collections)

    def exists(self, name: str) -> bool:
        if self.follows:
            self._follow_catalog()
        return self.resolve(name) in self._collections

    def create(self, name: str, req: CreateCollection) -> None:
        self._refuse_if_follower()
        check_name(name)
        settings = settings_from_create(req)
        if req.init_from is not None:
            raise InvalidInput("init_from: copying from another collection is not supported; use snapshots")
        with self._mutex:
            if name in self._collections or name in self._aliases:
                raise AlreadyExists(f"Collection `{name}` already exists!")
            path = self._collections_dir / name
            shutil.rmtree(path, ignore_errors=True)
            coll = Collection.create(
                name, path, settings, max_map_size=self._max_map_size, limits=self._limits, worker=self.worker
            )
            try:
                self.catalog.add_collection(name)  # the commit that makes it exist
            except BaseException:
                coll.close(checkpoint=False)
                shutil.rmtree(path, ignore_errors=True)
                raise
            self._collections[name] = coll

    def delete(self, name: str) -> bool:
        self._refuse_if_follower()
        with self._mutex:
            real = self.resolve(name)
            coll = self._collections.get(real)
            if coll is None:
                return False
            self.catalog.remove_collection(real)  # from here on it does not exist, even after a crash
            del self._collections[real]
            self._aliases = {a: c for a, c in self._aliases.items() if c != real}
            coll.close(checkpoint=False)
            trash = self._trash(real)
            coll.path.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
            return True

    # --- aliases -------------------------------------------------------------------------

    def aliases(self, collection: Optional[str] = None) -> list[AliasDescription]:
        if self.follows:
            self._follow_catalog()
        if collection is not None:
            real = self.get(collection).name
            return [
                AliasDescription(alias_name=a, collection_name=c) for a, c in sorted(self._aliases.items()) if c == real
            ]
        return [AliasDescription(alias_name=a, collection_name=c) for a, c in sorted(self._aliases.items())]

    def change_aliases(self, req: ChangeAliasesOperation) -> None:
        """Apply all actions to a copy, then store the result at once: the batch is atomic."""
        self._refuse_if_follower()
        with self._mutex:
            aliases = changed_aliases(self._aliases, self._collections, req)
            self.catalog.replace_aliases(aliases)
            self._aliases = aliases

    # --- snapshots -----------------------------------------------------------------------

    def create_snapshot(self, name: str) -> SnapshotDescription:
        """A snapshot of one commit of the collection; writes go on meanwhile, a delete waits for it."""
        self._refuse_if_follower()
        with self.use(name) as coll:
            return self.snapshots.create(coll)

    def list_snapshots(self, name: str) -> list[SnapshotDescription]:
        return self.snapshots.list(self.get(name).name)

    def open_snapshot(self, name: str, snapshot: str) -> BinaryIO:
        return self.snapshots.open_file(self.get(name).name, snapshot)

    def delete_snapshot(self, name: str, snapshot: str) -> bool:
        self._refuse_if_follower()
        return self.snapshots.delete(self.get(name).name, snapshot)

    def locate_snapshot(self, name: str, location: str) -> Path:
        """The archive a recover request's ``location`` names (see :meth:`SnapshotStore.locate`)."""
        return self.snapshots.locate(self.resolve(name), location)

    def restore_snapshot(self, name: str, archive: Path, checksum: Optional[str], label: str) -> bool:
        """Replace (or create) collection ``name`` with the snapshot in ``archive``; True when done.

        The archive is checked against ``checksum`` (as ``check_checksum`` gives it; else the checksum
        stored beside it) and unpacked into ``.trash/`` in one pass, and its LMDB opened, before
        anything is swapped: a bad file never disturbs the collection it would replace. The index
        files come along, so the restored collection loads its index instead of rebuilding it.
        """
        self._refuse_if_follower()
        real = check_name(self.resolve(name))
        expected = checksum or stored_checksum(archive)
        staging = self._trash("restore")
        try:
            with storage_errors(f"the restore of collection {real}"):
                unpack(archive, staging, label, expected)
            self._install(real, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("collection %s restored from snapshot %s", real, label)
        return True

    def _install(self, name: str, staged: Path) -> None:
        """Swap ``staged`` in as collection ``name``: close the old one (waiting for its requests) and
        move it to ``.trash/``, rename the new folder in, open it; if that fails the old one comes back.

        Aliases of a replaced collection stay. A crash between the two renames leaves the catalog
        naming a missing folder, which the next open drops (the snapshot file still holds the data):
        never a mix of old and new.
        """
        trash: Optional[Path] = None
        with self._mutex:
            path = self._collections_dir / name
            old = self._collections.pop(name, None)
            if old is not None:
                old.close(checkpoint=False)
                trash = self._trash(name)
                old.path.rename(trash)
            elif name in self._aliases:
                raise AlreadyExists(f"Alias `{name}` already exists: a collection cannot take its name!")
            else:
                shutil.rmtree(path, ignore_errors=True)
            staged.rename(path)
            try:
                coll = self._open(name, path)
                try:  # the commit that makes it exist (a replacement renews the entry: followers reopen)
                    self.catalog.add_collection(name)
                except BaseException:
                    coll.close(checkpoint=False)
                    raise
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                if trash is not None:
                    trash.rename(path)
                    self._collections[name] = self._open(name, path)
                raise
            self._collections[name] = coll
        coll.optimizer.notify()  # an index left out of the snapshot is rebuilt now, not at the next idle wake
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

    def change_vectors(
        self, name: str, change: Callable[[dict[str, Any]], tuple[Optional[dict[str, Any]], Optional[Removal]]]
    ) -> int:
        """Add or remove a vector of collection ``name`` (:mod:`vecdb.engine.vector_names`): ``change``
        maps its settings to the new ones (None: nothing to do) and what to remove from storage. The
        collection is closed (waiting for its requests), its LMDB edited in one transaction, then opened
        again: every in-memory structure is built for the new vectors. Returns the write's sequence number."""
        self._refuse_if_follower()
        real = self.resolve(name)
        with self._mutex:
            coll = self._collections.get(real)
            if coll is None:
                raise raise_missing_collection(name)
            settings, removal = change(coll.state.settings)
            if settings is None:
                return coll.state.mvcc.view.seq
            coll.close()  # (a checkpoint first: the indexes of the vectors that stay are kept)
            del self._collections[real]
            try:
                seq, forgotten = edit_vectors(coll.path, settings, removal)
            finally:
                self._collections[real] = self._open(real, coll.path)
            for manifest in forgotten:
                for file in checkpoint_files(manifest):
                    (coll.path / INDEX_DIR / file).unlink(missing_ok=True)
            self.catalog.add_collection(real)  # (renews the entry: follower processes reopen it)
        self._collections[real].optimizer.notify()
        log.info("collection %s: vectors changed (%s)", real, "removal" if removal is not None else "addition")
        return seq

    def close(self) -> None:
        with self._mutex:
            for coll in self._collections.values():
                coll.close()
            self._collections.clear()
            self.catalog.env.close()
            if self._lock_file is not None:
                self._lock_file.release()
