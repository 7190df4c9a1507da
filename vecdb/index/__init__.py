"""Vector indexes: they know vectors and integer ids, nothing of payloads, LMDB or HTTP."""
