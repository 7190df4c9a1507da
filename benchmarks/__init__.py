"""vecdb benchmarks: ``python -m benchmarks {exact,ingest,reopen,hnsw,filtered,open-indexed,all} [options]``.

Every figure is reported next to a reference measured in the same process and
run (raw numpy / faiss / LMDB), so the ratios stay meaningful on a shared,
noisy machine. Data sets are generated (seeded Gaussian clusters) or read from
``../shared/datasets`` (never copied into the repository). Temporary data
directories live under the system temp dir (``--tmp``) and are removed after.
"""
