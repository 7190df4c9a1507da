"""Shared helpers: data sets, timing, markdown tables, a server subprocess, memory and profiles."""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tests.harness import start_server

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASETS = REPO_ROOT / ".." / "shared" / "datasets"
RESULTS_DIR = Path(__file__).resolve().parent / "results"

# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def _centers(d: int, n_clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0])
    centers = rng.standard_normal((n_clusters, d)).astype(np.float32)
    spreads = rng.uniform(0.25, 0.75, size=n_clusters).astype(np.float32)
    return centers, spreads


def _draw(n: int, d: int, n_clusters: int, seed: int, stream: int) -> np.ndarray:
    centers, spreads = _centers(d, n_clusters, seed)
    rng = np.random.default_rng([seed, stream])
    which = rng.integers(n_clusters, size=n)
    out = rng.standard_normal((n, d), dtype=np.float32)
    out *= spreads[which, None]
    out += centers[which]
    return out


def make_clustered(n: int, d: int, n_clusters: int = 100, seed: int = 0) -> np.ndarray:
    """``n`` float32 rows from a mixture of ``n_clusters`` isotropic Gaussians (deterministic in ``seed``)."""
    return _draw(n, d, n_clusters, seed, 1)


def make_queries(nq: int, d: int, n_clusters: int = 100, seed: int = 0) -> np.ndarray:
    """Queries from the same mixture as ``make_clustered(..., seed)`` but not among its rows."""
    return _draw(nq, d, n_clusters, seed, 2)


@dataclass
class Dataset:
    name: str
    base: np.ndarray  # float32 [n, d]
    queries: np.ndarray  # float32 [nq, d]
    distance: str  # vecdb Distance value: "Cosine", "Euclid", "Dot"
    gt_ids: Optional[np.ndarray] = None  # int [nq, >=10] when the data set ships ground truth


_METRICS = {"l2": "Euclid", "cosine": "Cosine", "ip": "Dot", "dot": "Dot"}


def load_dataset(name: str, root: Path, n: Optional[int] = None) -> Dataset:
    """``sift5k`` or ``glove50`` from ``root`` (read in place). ``n`` truncates the base (drops ground truth)."""
    root = Path(root)
    meta = json.loads((root / f"{name}_meta.json").read_text())
    base = np.load(root / f"{name}_base.npy").astype(np.float32)
    queries = np.load(root / f"{name}_queries.npy").astype(np.float32)
    gt = np.load(root / f"{name}_gt_ids.npy")
    if n is not None and n < len(base):
        base, gt = base[:n], None
    return Dataset(name, np.ascontiguousarray(base), np.ascontiguousarray(queries), _METRICS[meta["metric"]], gt)


def synthetic(n: int, d: int, nq: int, seed: int = 0, distance: str = "Cosine") -> Dataset:
    return Dataset(
        f"clustered-{n}x{d}-seed{seed}", make_clustered(n, d, seed=seed), make_queries(nq, d, seed=seed), distance
    )


def normalise(x: np.ndarray) -> np.ndarray:
    """Row-normalise exactly as vecdb does at write time (float32, zero rows left alone)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32, copy=False)


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean |found[:k] & truth[:k]| / k over rows (-1 in ``found`` never matches)."""
    hits = 0
    for f, t in zip(found, truth, strict=True):
        hits += len(set(int(x) for x in f[:k] if x >= 0) & set(int(x) for x in t[:k]))
    return hits / (k * len(truth))


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------


@dataclass
class Stats:
    """Latencies in seconds of repeated calls."""

    samples: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.samples, 50)) * 1e3

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.samples, 99)) * 1e3

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.samples)) * 1e3

    @property
    def total_s(self) -> float:
        return float(np.sum(self.samples))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def best_us(fn: Callable[[int], Any], n: int, rounds: int = 3) -> float:
    """Microseconds per call of ``fn(0..n-1)``: the best of ``rounds`` passes (a noisy machine only ever
    slows a pass down)."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def interleaved(
    methods: dict[str, Callable[[int], Any]], n_calls: int, warmup: int = 5, seed: int = 0, block: int = 1
) -> dict[str, Stats]:
    """Call every method once per index, in a fresh random order each time, so load changes (and
    whatever one method leaves in the caches for the next) hit them all alike.

    ``block`` > 1: each method runs ``block`` consecutive indexes before the next takes its turn (a
    fresh random order per block). For libraries that sweep memory the size of the data set on
    every call, which evicts the other libraries' working sets from the CPU caches: one process
    serves one library in real use, so its caches are its own.
    """
    names = list(methods)
    for i in range(min(warmup, n_calls)):
        for name in names:
            methods[name](i)
    stats = {name: Stats() for name in names}
    rng = np.random.default_rng(seed)
    for lo in range(0, n_calls, block):
        for j in rng.permutation(len(names)):
            name = names[j]
            for i in range(lo, min(lo + block, n_calls)):
                t0 = time.perf_counter()
                methods[name](i)
                stats[name].add(time.perf_counter() - t0)
    return stats


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    v = float(value)
    if v != v:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.1f}"
    return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.{digits - 1}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


@dataclass
class Section:
    """One benchmark's report: markdown text and, for plots, (label, value) pairs."""

    title: str
    markdown: str
    plot: list[tuple[str, float]] = field(default_factory=list)

    def render(self) -> str:
        return f"## {self.title}\n\n{self.markdown.strip()}\n"


def environment_note() -> str:
    import faiss  # noqa: PLC0415

    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or "?"
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        commit += " (+local changes)" if dirty else ""
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"vecdb commit {commit}; Python {platform.python_version()}, numpy {np.__version__}, "
        f"faiss {faiss.__version__}; {os.cpu_count()} CPUs; load average {load}; "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}"
    )


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (VmHWM; getrusage's ru_maxrss survives exec)."""
    own = proc_peak_rss_mib(os.getpid())
    return own if own is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def proc_peak_rss_mib(pid: int) -> Optional[float]:
    """Peak RSS (VmHWM) of a live process, e.g. the server, before it exits."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def profile_top(fn: Callable[[], Any], limit: int = 15, sort: str = "tottime") -> str:
    """Run ``fn`` under cProfile; the top functions as a fenced text block."""
    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    text = buf.getvalue()
    start = text.find("   ncalls")
    body = text[start:] if start >= 0 else text
    total = text[: start if start >= 0 else 0].strip().splitlines()
    head = next((ln.strip() for ln in total if "function calls" in ln), "")
    return f"```\n{head}\n{body.rstrip()}\n```"


# --------------------------------------------------------------------------------------------
# temp dirs and the server
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_dir(root: Optional[str], prefix: str) -> Iterator[Path]:
    """A temp directory (on ``root`` or the system temp dir), removed afterwards. Never inside the repo."""
    path = Path(tempfile.mkdtemp(prefix=f"vecdb-bench-{prefix}-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_child(script: str, *args: str, timeout: float = 600) -> dict[str, Any]:
    """Run ``python -c script args...`` in a fresh interpreter (this repo importable) and return the
    JSON object on its last stdout line, plus ``wall_s``: imports and start-up count, as for a user."""
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=timeout
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} failed: {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    return out


class Server:
    """``python -m vecdb serve`` on a free loopback port, as a child process (``tests/harness.py`` starts it).

    Adds what a benchmark reports: ``startup_s`` (spawn to healthy, loading included) and the child's
    ``peak_rss_mib``, read just before it is stopped.
    """

    def __init__(self, path: Path, log_dir: Path, timeout: float = 60.0) -> None:
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
        self._child = start_server(path, env=env, log_dir=log_dir, timeout=timeout, cwd=REPO_ROOT)
        self.proc = self._child.proc
        self.port = self._child.port
        self.url = self._child.url
        self.log = self._child.log
        self.startup_s = self._child.startup_s
        self.peak_rss_mib: Optional[float] = None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.peak_rss_mib = proc_peak_rss_mib(self.proc.pid)
            self._child.stop(timeout=30)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http_client(url: str) -> Any:
    """One keep-alive HTTP/1.1 connection to the local server."""
    import httpx  # noqa: PLC0415

    assert url.startswith("http://127.0.0.1:"), "benchmarks only talk to the loopback server"
    return httpx.Client(base_url=url, timeout=300.0, limits=httpx.Limits(max_connections=1))


def check(resp: Any) -> Any:
    if resp.status_code != 200:
        raise RuntimeError(f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text[:500]}")
    import orjson  # noqa: PLC0415

    return orjson.loads(resp.content)["result"]


# --------------------------------------------------------------------------------------------
# filling a collection
# --------------------------------------------------------------------------------------------


def payloads_for(lo: int, hi: int) -> list[dict[str, Any]]:
    return [{"i": i, "tag": f"t{i % 10}"} for i in range(lo, hi)]


def fill_embedded(
    client: Any,
    name: str,
    base: np.ndarray,
    distance: str,
    batch: int = 1000,
    with_payloads: bool = True,
    indexing: bool = False,
) -> float:
    """Create ``name`` and upsert ``base`` (ids 0..n-1) in batch dicts; returns seconds.

    ``indexing=False`` turns the HNSW optimizer off for the collection, so the
    exact-search and reopen benchmarks measure the exact path alone.
    """
    client.create_collection(
        name,
        {"size": int(base.shape[1]), "distance": distance},
        optimizers_config=None if indexing else {"indexing_threshold": 0},
    )
    t0 = time.perf_counter()
    for lo in range(0, len(base), batch):
        hi = min(lo + batch, len(base))
        body: dict[str, Any] = {"ids": list(range(lo, hi)), "vectors": base[lo:hi]}
        if with_payloads:
            body["payloads"] = payloads_for(lo, hi)
        client.upsert(name, body)
    return time.perf_counter() - t0


def plot_bars(
    section: Section,
    path: Path,
    xlabel: str,
    reference_bars: int = 0,
    highlight: Optional[str] = None,
    digits: int = 2,
) -> bool:
    """A horizontal bar per ``section.plot`` (label, value) pair. vecdb's bars are blue, references
    grey: the first ``reference_bars`` bars, or (``highlight``) every bar whose label does not start
    with it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[plot] matplotlib is not installed: no PNG", flush=True)
        return False
    labels = [lbl for lbl, _ in section.plot]
    values = [v for _, v in section.plot]
    if highlight is not None:
        colors = ["#3a7bd5" if lbl.startswith(highlight) else "#888888" for lbl in labels]
    else:
        colors = ["#888888"] * reference_bars + ["#3a7bd5"] * (len(labels) - reference_bars)
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(labels) + 1.5))
    bars = ax.barh(range(len(labels)), values, color=colors)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(section.title, fontsize=10)
    for bar, v in zip(bars, values, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {v:,.{digits}f}", va="center", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_recall_qps(
    curves: dict[str, dict[str, list[tuple[Any, float, float]]]],
    path: Path,
    title: str,
    target: float,
    styles: Optional[dict[str, tuple[str, str]]] = None,
    annotate: Optional[tuple[str, str]] = None,
    highlight: Optional[str] = None,
    ylabel: str = "queries per second (log)",
) -> bool:
    """Recall@10 (x) vs QPS (y, log), one panel per data set; ``curves[set][method]`` holds
    ``(knob, recall, qps)`` points. ``annotate``: (method, label prefix) whose points get their knob."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[plot] matplotlib is not installed: no PNG", flush=True)
        return False
    fig, axes = plt.subplots(1, len(curves), figsize=(6.5 * len(curves), 5), squeeze=False)
    for ax, (name, methods) in zip(axes[0], curves.items(), strict=True):
        for method, pts in methods.items():
            if not pts:
                continue
            color, style = (styles or {}).get(method, (None, "o-"))
            pts = sorted(pts)
            ax.plot(
                [p[1] for p in pts],
                [p[2] for p in pts],
                style,
                color=color,
                label=method,
                markersize=10 if method == highlight else 4,
            )
            if annotate and method == annotate[0]:
                for knob, r, q in pts:
                    ax.annotate(f"{annotate[1]}{knob}", (r, q), fontsize=7, textcoords="offset points", xytext=(3, 3))
        ax.set_yscale("log")
        ax.set_xlabel("recall@10")
        ax.set_ylabel(ylabel)
        ax.axvline(target, color="#888888", lw=0.8, ls=":")
        ax.set_title(name, fontsize=10)
        ax.grid(True, which="both", lw=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
