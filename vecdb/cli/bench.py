"""``vecdb bench``: run the benchmark harness (``python -m benchmarks``) on a chosen data set.

The harness lives in ``benchmarks/`` at the root of the source tree and is not
part of the wheel (it needs the shared data sets, matplotlib and
scikit-learn, and writes results into the tree). So this command finds a
source checkout (``--repo``, ``VECDB_REPO``, the tree this package was
imported from, or the current directory), runs the harness there in a child
process (its BLAS thread settings must be in place before numpy loads) and
relays its output. Options it does not know are handed to the benchmark.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

BENCHES = ("exact", "ingest", "reopen", "hnsw", "filtered", "open-indexed", "kmeans", "ivfpq", "all")
DATASET_FLAG = {"exact": "--dataset", "hnsw": "--dataset", "ingest": "--dataset", "ivfpq": "--sets"}
"""How each benchmark that runs on a named data set spells the option; the others use synthetic data."""


def find_repo(explicit: Optional[Path]) -> Path:
    """The source tree holding ``benchmarks/__main__.py``, or a clear error saying how to get one."""
    candidates = [explicit] if explicit else [Path(__file__).resolve().parent.parent, Path.cwd()]
    for root in candidates:
        if (root / "benchmarks" / "__main__.py").is_file():
            return root.resolve()
    where = " or ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"the benchmark harness (benchmarks/ in the vecdb source tree) is not under {where}: it is not installed "
        f"with the package; run this from a source checkout (git clone, pip install -e '.[bench]') or pass "
        f"--repo DIR"
    )


def available_datasets(root: Path) -> list[str]:
    return sorted(p.name[: -len("_base.npy")] for p in root.glob("*_base.npy"))


def bench_command(
    ctx: typer.Context,
    name: str = typer.Argument("exact", help=f"Benchmark: {', '.join(BENCHES)}."),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", help="Data set: sift5k, glove50, ... (any <name>_base.npy under --datasets), or synthetic."
    ),
    datasets: Optional[Path] = typer.Option(
        None,
        "--datasets",
        envvar="VECDB_DATASETS",
        help="Folder of the .npy data sets (default: the harness's, ../shared/datasets from the repo root).",
    ),
    repo: Optional[Path] = typer.Option(
        None, "--repo", envvar="VECDB_REPO", help="vecdb source checkout holding benchmarks/."
    ),
) -> None:
    """Run one benchmark of the harness; other options (e.g. --queries 50 --no-rest) go to the benchmark.

    Benchmarks that take a data set: exact, hnsw, ingest, ivfpq. `vecdb bench exact --dataset sift5k
    --queries 50 --no-rest` is a quick one.
    """
    from vecdb.cli.target import reported_errors

    with reported_errors("bench"):
        if name not in BENCHES:
            raise typer.BadParameter(f"unknown benchmark {name!r}: one of {', '.join(BENCHES)}", param_hint="NAME")
        root = find_repo(repo)
        argv = [name]
        if dataset is not None:
            if name not in DATASET_FLAG:
                raise typer.BadParameter(
                    f"benchmark {name!r} runs on synthetic data only; these take a data set: {', '.join(DATASET_FLAG)}",
                    param_hint="--dataset",
                )
            folder = (datasets or root / ".." / "shared" / "datasets").resolve()
            names = [n.strip() for n in dataset.split(",") if n.strip()]
            missing = [n for n in names if n != "synthetic" and not (folder / f"{n}_base.npy").is_file()]
            if missing:
                have = ", ".join(available_datasets(folder)) or "none"
                raise typer.BadParameter(
                    f"no data set {', '.join(missing)} in {folder} (available: {have}; pass --datasets DIR)",
                    param_hint="--dataset",
                )
            argv += [DATASET_FLAG[name], ",".join(names)]
        if datasets is not None:
            argv += ["--datasets", str(datasets.resolve())]
        argv += list(ctx.args)
        code = run_harness(root, argv)
    if code:
        raise typer.Exit(code)


def run_harness(root: Path, argv: list[str]) -> int:
    """``python -m benchmarks ARGV`` in ``root``, its output relayed line by line; returns its exit code."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    typer.echo(f"[vecdb bench] python -m benchmarks {' '.join(argv)}  (in {root})", err=True)
    with subprocess.Popen(
        [sys.executable, "-m", "benchmarks", *argv],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                typer.echo(line.rstrip("\n"))
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait()
            raise
        return proc.wait()


CONTEXT_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}

__all__ = ["BENCHES", "CONTEXT_SETTINGS", "bench_command", "find_repo", "run_harness"]
