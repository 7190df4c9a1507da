"""L1, storage: the LMDB environments, tables and the data-directory lock; sees bytes and transactions only."""
