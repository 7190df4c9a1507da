"""``python -m benchmarks <name> [options]`` (exact, ingest, reopen, hnsw, filtered, open-indexed, kmeans,
ivfpq, ecosystem, sparse, hybrid, scroll, serve, ef-default, edge, query-surface, quantization, multivector,
cluster, all); see
``--help`` of each."""

from __future__ import annotations

import os
import sys


def _threads_from_argv(argv: list[str]) -> int:
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 1


# BLAS/OpenMP thread counts are read when numpy and faiss load, so they are set before any import.
# Default 1: on a small shared machine, multi-threaded BLAS in this process, OpenMP in faiss and the
# server subprocess oversubscribe the cores and a single stolen core stalls every gemv (the p50 of
# a 100k x 128 matrix-vector product swung 1-5 ms run to run). The server child inherits this.
THREADS = _threads_from_argv(sys.argv[1:])
if THREADS > 0:
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[_var] = str(THREADS)

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from benchmarks import (  # noqa: E402
    cluster,
    ecosystem,
    edge,
    ef_default,
    exact,
    filtered,
    hnsw,
    hybrid,
    ingest,
    ivfpq,
    kmeans,
    multivector,
    open_indexed,
    quantization,
    query_surface,
    reopen,
    scroll,
    serve,
    sparse,
)
from benchmarks.common import DEFAULT_DATASETS, RESULTS_DIR, Section, environment_note, plot_bars  # noqa: E402

BENCHES = {
    "exact": exact,
    "ingest": ingest,
    "reopen": reopen,
    "hnsw": hnsw,
    "filtered": filtered,
    "open-indexed": open_indexed,
    "kmeans": kmeans,
    "ivfpq": ivfpq,
    "ecosystem": ecosystem,
    "sparse": sparse,
    "hybrid": hybrid,
    "scroll": scroll,
    "serve": serve,
    "ef-default": ef_default,
    "edge": edge,
    "query-surface": query_surface,
    "quantization": quantization,
    "multivector": multivector,
    "cluster": cluster,
}
# ``all`` runs these (about 75 s on 2 cores). hnsw (about 5 min: glove50's 399k-point graph is built twice,
# by vecdb and by raw faiss) and filtered (about 75 s: 100k points indexed, then 100k more under queries) would
# take it past 3 minutes, so they run only on their own.
ALL = ("exact", "ingest", "reopen")


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--datasets",
        type=Path,
        default=DEFAULT_DATASETS,
        help="folder of the shared .npy data sets (default ../shared/datasets from the repo root)",
    )
    p.add_argument("--tmp", default=None, help="where temporary data directories go (default: system temp dir)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    p.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="skip the cProfile sections (they run outside the timed loops)",
    )
    p.add_argument("--out", type=Path, default=None, help="also write the markdown report to this file")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP threads per process, this one and the server (default 1; 0 = libraries' defaults)",
    )


def _plot(section: Section, path: Path) -> bool:
    return plot_bars(section, path, "p50 latency per single query, ms (lower is better)", reference_bars=2)


def _real_data_check(args: argparse.Namespace) -> list[Section]:
    """sift5k (real SIFT, Euclid) through the exact benchmark: recall vs the shipped ground truth."""
    if not (Path(args.datasets) / "sift5k_base.npy").exists():
        print(f"[exact] {args.datasets}/sift5k_base.npy not found: skipping the real-data check", flush=True)
        return []
    p = argparse.ArgumentParser()
    exact.add_args(p)
    _common_args(p)
    sub = p.parse_args(["--dataset", "sift5k", "--queries", "100", "--no-rest", "--no-profile"])
    sub.datasets, sub.tmp = args.datasets, args.tmp
    section = exact.run(sub)
    print("\n" + section.render(), flush=True)
    return [section]


def _write(path: Path, sections: list[Section], command: str, elapsed: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    threads = f"BLAS/OpenMP threads per process: {THREADS if THREADS > 0 else 'library default'}"
    text = (
        f"# vecdb benchmarks\n\n`{command}`\n\n{environment_note()}; {threads}; total {elapsed:.0f} s.\n\n"
        + "\n".join(s.render() for s in sections)
    )
    path.write_text(text)
    print(f"[written] {path}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="bench", required=True)
    for name, module in BENCHES.items():
        p = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_args(p)
        _common_args(p)
        p.add_argument(
            "--plot", action="store_true", help="(exact, hnsw, ivfpq) also save a PNG under benchmarks/results/"
        )
    p_all = sub.add_parser(
        "all", help="exact, ingest and reopen (not hnsw, filtered); writes benchmarks/results/<name>.md"
    )
    p_all.add_argument("--n", type=int, default=100_000, help="points for every benchmark (default 100000)")
    p_all.add_argument("--dim", type=int, default=128)
    p_all.add_argument("--queries", type=int, default=200)
    p_all.add_argument("--name", default="latest", help="results file name (default: latest)")
    p_all.add_argument("--no-rest", action="store_true")
    _common_args(p_all)
    args = parser.parse_args(argv)
    command = "python -m benchmarks " + " ".join(argv)
    t0 = time.perf_counter()
    print(f"[env] {environment_note()}", flush=True)

    if args.bench != "all":
        section = BENCHES[args.bench].run(args)
        print("\n" + section.render(), flush=True)
        if args.bench == "exact" and args.plot:
            _plot(section, RESULTS_DIR / "exact_latency.png")
        if args.bench == "hnsw" and args.plot and hnsw.plot(section, RESULTS_DIR / hnsw.PLOT_NAME):
            print(f"[plot] {RESULTS_DIR / hnsw.PLOT_NAME}", flush=True)
            section.markdown += f"\n![recall vs QPS]({hnsw.PLOT_NAME})\n"
        if args.bench == "serve" and args.plot:
            png = serve.plot_name(args)
            if plot_bars(section, RESULTS_DIR / png, "requests per second (higher is better)", highlight="vecdb"):
                print(f"[plot] {RESULTS_DIR / png}", flush=True)
                section.markdown += f"\n![requests per second]({png})\n"
        if args.bench == "sparse" and args.plot and sparse.plot_qps(section, RESULTS_DIR / sparse.PLOT_NAME):
            print(f"[plot] {RESULTS_DIR / sparse.PLOT_NAME}", flush=True)
            section.markdown += f"\n![single-query QPS]({sparse.PLOT_NAME})\n"
        if args.bench == "ivfpq" and args.plot and ivfpq.plot(section, RESULTS_DIR / ivfpq.PLOT_NAME):
            print(f"[plot] {RESULTS_DIR / ivfpq.PLOT_NAME}", flush=True)
            section.markdown += f"\n![recall vs QPS]({ivfpq.PLOT_NAME})\n"
        if args.out:
            _write(args.out, [section], command, time.perf_counter() - t0)
        return 0

    sections = []
    for name in ALL:
        module = BENCHES[name]
        p = argparse.ArgumentParser()
        module.add_args(p)
        _common_args(p)
        sub_args = p.parse_args([])
        for key in ("n", "dim", "queries", "datasets", "tmp", "seed", "profile", "no_rest"):
            if hasattr(sub_args, key) and hasattr(args, key):
                setattr(sub_args, key, getattr(args, key))
        section = module.run(sub_args)
        print("\n" + section.render(), flush=True)
        sections.append(section)
        if name == "exact" and _plot(section, RESULTS_DIR / "exact_latency.png"):
            section.markdown += "\n![p50 latency per method](exact_latency.png)\n"
        if name == "exact":
            sections.extend(_real_data_check(args))
    _write(args.out or RESULTS_DIR / f"{args.name}.md", sections, command, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
