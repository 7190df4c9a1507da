"""Backups of a collection: the archive format (``archive``) and the snapshot files kept per collection (``store``)."""
