"""``vecdb import / export / collections / bench`` against a real server over loopback and an embedded data dir.

Stored vectors are compared bit for bit with the source files (Euclid
collections store vectors as given), payloads and ids exactly. Most runs go
through typer's CliRunner (in-process, fast); one import runs as a real
process that is SIGKILLed midway and then resumed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from typer.testing import CliRunner
from vecdb_client import RemoteClient

import vecdb
import vecdb.transfer.bulk
from tests.harness import free_port
from vecdb.cli.main import app

try:  # Parquet is an optional extra: without pyarrow its cases skip, the rest still run
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:
    pa = pq = None

N, DIM = 500, 8
NEEDS_PYARROW = pytest.mark.skipif(pa is None, reason="pyarrow is not installed (pip install 'vecdb[parquet]')")
REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO.parent / "shared" / "datasets"


# --- data files ------------------------------------------------------------------------------


def _uuid(i: int) -> str:
    return str(uuid.UUID(int=(i * 0x9E3779B97F4A7C15) % (1 << 128)))


class Source:
    """Vectors, ids and payloads as the files hold them, and the files themselves."""

    def __init__(self, root: Path) -> None:
        rng = np.random.default_rng(7)
        self.root = root
        self.vectors = (rng.standard_normal((N, DIM)) * 10).astype(np.float32)
        self.payloads = [{"i": i, "tag": f"t{i % 7}", "nested": {"even": i % 2 == 0}} for i in range(N)]
        np.save(root / "v.npy", self.vectors)
        with open(root / "payloads.jsonl", "wb") as f:
            f.writelines(orjson.dumps(p) + b"\n" for p in self.payloads)
        dims = np.full((N, 1), DIM, dtype="<i4")
        (root / "v.fvecs").write_bytes(np.hstack([dims, self.vectors.view("<i4")]).tobytes())
        self.uuids = [_uuid(i) for i in range(N)]
        np.save(root / "uuids.npy", np.array(self.uuids))
        # JSONL: integer ids for even rows, UUIDs (upper case: normalised on the way in) for odd rows
        self.jsonl_ids = [i * 3 if i % 2 == 0 else self.uuids[i] for i in range(N)]
        with open(root / "v.jsonl", "wb") as f:
            for i in range(N):
                raw_id = self.jsonl_ids[i] if i % 2 == 0 else self.uuids[i].upper()
                f.write(
                    orjson.dumps(
                        {"id": raw_id, "vector": self.vectors[i], "payload": self.payloads[i]},
                        option=orjson.OPT_SERIALIZE_NUMPY,
                    )
                    + b"\n"
                )
                if i == 10:
                    f.write(b"\n")  # blank lines are skipped
        if pa is None:
            return
        # Parquet: ids 1000.., payloads as a struct column, row groups that do not line up with batches
        table = pa.table(
            {
                "id": pa.array(np.arange(N, dtype=np.uint64) + 1000),
                "vector": pa.array(list(self.vectors), type=pa.list_(pa.float32())),
                "payload": pa.array(self.payloads),
            }
        )
        pq.write_table(table, root / "v.parquet", row_group_size=170)

    def expected(self, fmt: str) -> dict[Any, tuple[np.ndarray, dict[str, Any]]]:
        """id -> (vector, payload) as each import test stores it."""
        if fmt == "npy":  # --payloads payloads.jsonl --id-offset 5000
            return {5000 + i: (self.vectors[i], self.payloads[i]) for i in range(N)}
        if fmt == "fvecs":  # --ids uuids.npy, no payloads
            return {self.uuids[i]: (self.vectors[i], {}) for i in range(N)}
        if fmt == "jsonl":
            return {self.jsonl_ids[i]: (self.vectors[i], self.payloads[i]) for i in range(N)}
        return {1000 + i: (self.vectors[i], self.payloads[i]) for i in range(N)}


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Source:
    return Source(tmp_path_factory.mktemp("cli_src"))


IMPORT_ARGS = {
    "npy": ["v.npy", "--payloads", "payloads.jsonl", "--id-offset", "5000"],
    "fvecs": ["v.fvecs", "--ids", "uuids.npy"],
    "jsonl": ["v.jsonl"],
    "parquet": ["v.parquet"],
}


def _files(src: Source, args: list[str]) -> list[str]:
    """Relative file names in ``args`` as absolute paths under the source folder."""
    return [str(src.root / a) if (src.root / a).is_file() else a for a in args]


# --- running the CLI ---------------------------------------------------------------------------


runner = CliRunner()


def cli(*args: str, code: int = 0, input: str | None = None) -> Any:
    result = runner.invoke(app, [str(a) for a in args], input=input)
    assert result.exit_code == code, (
        f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}\n{result.exception!r}"
    )
    assert "Traceback" not in result.output
    if code:  # an error we report, not an exception that escaped
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


@pytest.fixture(params=["url", "path"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """CLI options selecting a running server (--url) or an embedded data directory (--path)."""
    if request.param == "url":
        return ["--url", request.getfixturevalue("server").url]
    return ["--path", str(tmp_path / "db")]


def stored(target: list[str], collection: str) -> dict[Any, tuple[np.ndarray, dict[str, Any]]]:
    """Every point of ``collection`` read back through the client the target names."""
    client: Any = RemoteClient(target[1]) if target[0] == "--url" else vecdb.Client(path=target[1])
    try:
        out, offset = {}, None
        while True:
            points, offset = client.scroll(collection, limit=256, offset=offset, with_payload=True, with_vectors=True)
            out.update({p.id: (np.asarray(p.vector, dtype=np.float32), p.payload) for p in points})
            if offset is None:
                return out
    finally:
        client.close()


def assert_same(got: dict[Any, Any], want: dict[Any, Any]) -> None:
    assert set(got) == set(want)
    for key, (vector, payload) in want.items():
        assert np.array_equal(got[key][0], vector), key  # bit for bit: float32 in, float32 out
        assert got[key][1] == payload, key


# --- import ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["npy", "fvecs", "jsonl", pytest.param("parquet", marks=NEEDS_PYARROW)])
def test_import_each_format(src: Source, target: list[str], name: str, fmt: str) -> None:
    result = cli(
        "import",
        *_files(src, IMPORT_ARGS[fmt]),
        "-c",
        name,
        "--create",
        "--distance",
        "euclid",
        "--batch-size",
        "64",
        "--no-progress",
        *target,
    )
    assert f"imported {N} points into {name} (created)" in result.stderr
    assert_same(stored(target, name), src.expected(fmt))
    assert not list(src.root.glob("*.vecdb-import-*")), "the state file is removed on completion"


def test_import_cosine_named_vectors_and_progress_bar(src: Source, tmp_path: Path, name: str) -> None:
    db = ["--path", str(tmp_path / "db")]
    cli("import", src.root / "v.npy", "-c", name, "--create", *db)  # default Cosine, with a progress bar
    got = stored(db, name)
    unit = src.vectors / np.linalg.norm(src.vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(np.stack([got[i][0] for i in range(N)]), unit, rtol=1e-6, atol=1e-6)
    info = json.loads(cli("collections", "info", name, "--json", *db).stdout)
    assert info["config"]["params"]["vectors"] == {"size": DIM, "distance": "Cosine"}

    named = tmp_path / "named.jsonl"
    named.write_text(
        "".join(json.dumps({"id": i, "vector": {"img": src.vectors[i].tolist()}}) + "\n" for i in range(20))
    )
    cli("import", named, "-c", name + "_n", "--create", "--distance", "Dot", "--no-progress", *db)
    info = json.loads(cli("collections", "info", name + "_n", "--json", *db).stdout)
    assert info["config"]["params"]["vectors"] == {"img": {"size": DIM, "distance": "Dot"}}
    assert info["points_count"] == 20


def test_bad_row_names_its_line_and_keeps_the_resume_point(src: Source, tmp_path: Path, name: str) -> None:
    lines = (src.root / "v.jsonl").read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    # line 158 (1-based) holds row 156 (the blank line 12 is not a row): in the 4th batch of 50
    bad_lines = lines[:157] + [b'{"id": 1, "vector": [1.0, "x"]}\n'] + lines[158:]
    bad.write_bytes(b"".join(bad_lines))
    db = ["--path", str(tmp_path / "db")]
    args = ["import", bad, "-c", name, "--create", "--distance", "Euclid", "--batch-size", "50", "--no-progress", *db]
    result = cli(*args, code=1)
    assert f"vecdb import: error: {bad}, line 158: vector has 2 components" in result.stderr
    assert "resumes at row 150" in result.stderr
    state_file = tmp_path / f"bad.jsonl.vecdb-import-{name}.json"
    state = json.loads(state_file.read_text())
    assert state["cursor"]["row"] == 150 and state["rows_done"] == 150
    assert len(stored(db, name)) == 150

    # the same command resumes at the recorded row (and meets the same bad line)
    result = cli(*args, code=1)
    assert "resuming at row 150" in result.stderr and "line 158" in result.stderr

    # a fixed file is a changed file: resuming is refused, --restart imports it whole
    bad.write_bytes(b"".join(lines))
    result = cli(*args, code=1)
    assert "changed since the interrupted import" in result.stderr and "--restart" in result.stderr
    result = cli(*args, "--restart")
    assert "resuming" not in result.stderr
    assert not state_file.exists()
    assert_same(stored(db, name), src.expected("jsonl"))


@pytest.mark.parametrize(
    ("fmt", "failure"),
    [
        ("npy", KeyboardInterrupt),
        ("fvecs", KeyboardInterrupt),
        ("jsonl", "connect"),
        pytest.param("parquet", KeyboardInterrupt, marks=NEEDS_PYARROW),
    ],
)
def test_interrupted_import_resumes_without_resending(
    src: Source, tmp_path: Path, name: str, fmt: str, failure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 4th upsert fails (Ctrl-C, or the server gone): the state holds row 3 x 40; the re-run starts there."""
    sent: list[tuple[int, int]] = []
    real = vecdb.transfer.bulk.upsert_batch

    def flaky(client: Any, collection: str, batch: Any, vector_name: Any = None) -> None:
        if failure is not None and len(sent) == 3:
            raise KeyboardInterrupt if failure is KeyboardInterrupt else httpx.ConnectError("connection refused")
        real(client, collection, batch, vector_name)
        sent.append((batch.first_row, len(batch)))

    monkeypatch.setattr(vecdb.transfer.bulk, "upsert_batch", flaky)
    db = ["--path", str(tmp_path / "db")]
    args = [
        "import",
        *_files(src, IMPORT_ARGS[fmt]),
        "-c",
        name,
        "--create",
        "--distance",
        "Euclid",
        "--batch-size",
        "40",
        "--no-progress",
        *db,
    ]
    result = cli(*args, code=130 if failure is KeyboardInterrupt else 1)
    assert ("interrupted" if failure is KeyboardInterrupt else "cannot reach") in result.stderr
    assert "The same command resumes at row 120" in result.stderr
    assert len(stored(db, name)) == 120

    failure, sent[:] = None, []
    result = cli(*args)
    assert "resuming at row 120 (120 points imported by an earlier run" in result.stderr
    assert sent[0][0] == 120, "the acknowledged batches are not sent again"
    assert sum(n for _, n in sent) == N - 120
    assert_same(stored(db, name), src.expected(fmt))


def test_killed_import_process_resumes(src: Source, server: Any, tmp_path: Path, name: str) -> None:
    """End to end: a real `vecdb import` process is SIGKILLed mid-import, a second one finishes the job."""
    rng = np.random.default_rng(3)
    big = rng.standard_normal((10_000, 4)).astype(np.float32)
    np.save(tmp_path / "big.npy", big)
    state = tmp_path / f"big.npy.vecdb-import-{name}.json"
    cmd = [
        sys.executable,
        "-m",
        "vecdb",
        "import",
        str(tmp_path / "big.npy"),
        "-c",
        name,
        "--create",
        "--distance",
        "Euclid",
        "--batch-size",
        "100",
        "--no-progress",
        "--url",
        server.url,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    row = 0
    while row < 1000:
        assert proc.poll() is None, f"the import ended before it could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline
        try:
            row = json.loads(state.read_text())["cursor"]["row"]
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    recorded = json.loads(state.read_text())["cursor"]["row"]
    assert recorded >= 1000

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"resuming at row {recorded}" in done.stderr
    assert f"imported {10_000 - recorded} points" in done.stderr
    assert not state.exists()
    got = stored(["--url", server.url], name)
    assert len(got) == 10_000
    assert np.array_equal(np.stack([got[i][0] for i in range(10_000)]), big)


def test_import_errors_are_one_line(
    src: Source, server: Any, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("import", src.root / "v.npy", "-c", name, "--url", server.url, code=1)  # no --create
    r = cli("import", src.root / "v.npy", "-c", name, "--path", str(server.path), code=1)
    assert "in use by another process" in r.stderr
    r = cli("import", src.root / "v.npy", "-c", name, "--create", "--url", f"http://127.0.0.1:{free_port()}", code=1)
    assert "cannot reach the vecdb server" in r.stderr
    odd = tmp_path / "v.txt"
    odd.write_text("1 2 3\n")
    assert "pass --format" in cli("import", odd, "-c", name, code=1).stderr
    cli(
        "import",
        src.root / "v.npy",
        "-c",
        name,
        "--create",
        "--distance",
        "Euclid",
        "--no-progress",
        "--url",
        server.url,
    )
    r = cli(
        "import",
        src.root / "v.jsonl",
        "-c",
        name,
        "--no-progress",
        "--url",
        server.url,
        "--vector-column",
        "vec",
        code=1,
    )
    assert "line 1: no 'vec' field" in r.stderr
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # as if pyarrow were not installed
    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    r = cli("import", tmp_path / "x.parquet", "-c", name, "--url", server.url, code=1)
    assert "pip install 'vecdb[parquet]'" in r.stderr


# --- export ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "npy", pytest.param("parquet", marks=NEEDS_PYARROW)])
def test_export_import_round_trip(src: Source, server: Any, tmp_path: Path, name: str, fmt: str) -> None:
    """Export from the server, import the file into an embedded data directory: the same points."""
    remote = ["--url", server.url]
    source_fmt = fmt  # the JSONL source mixes integer and UUID ids, which one Parquet id column cannot hold
    cli(
        "import",
        *_files(src, IMPORT_ARGS[source_fmt]),
        "-c",
        name,
        "--create",
        "--distance",
        "Euclid",
        "--no-progress",
        *remote,
    )
    out = tmp_path / f"out.{fmt}"
    extra = ["--ids-output", tmp_path / "ids.npy", "--payloads-output", tmp_path / "p.jsonl"] if fmt == "npy" else []
    result = cli("export", "-c", name, "-o", out, "--batch-size", "128", *extra, *remote)
    assert f"exported {N} points of {name}" in result.stderr
    back = ["import", out, "-c", "copy", "--create", "--distance", "Euclid", "--no-progress"]
    if fmt == "npy":
        back += ["--ids", tmp_path / "ids.npy", "--payloads", tmp_path / "p.jsonl"]
    local = ["--path", str(tmp_path / "db")]
    cli(*back, *local)
    assert_same(stored(local, "copy"), src.expected(source_fmt))
    assert cli("export", "-c", name, "-o", out, *extra, *remote, code=1).stderr.endswith(
        "exists; pass --force to overwrite it\n"
    )
    if fmt == "jsonl" and pa is not None:
        r = cli("export", "-c", name, "-o", tmp_path / "mixed.parquet", *remote, code=1)
        assert "mixes integer and UUID ids" in r.stderr
        assert not list(tmp_path.glob("*mixed.parquet*")), "no partial output is left behind"


# --- collections -------------------------------------------------------------------------------


def test_collections_list_info_delete(src: Source, target: list[str], name: str) -> None:
    cli("import", src.root / "v.npy", "-c", name, "--create", "--distance", "Euclid", "--no-progress", *target)
    listed = json.loads(cli("collections", "list", "--json", *target).stdout)
    mine = next(c for c in listed if c["name"] == name)
    assert mine["points"] == N and mine["vectors"] == f"{DIM} Euclid"
    table = cli("collections", "list", *target).stdout
    assert name in table and "POINTS" in table

    info = json.loads(cli("collections", "info", name, "--json", *target).stdout)
    assert info["points_count"] == N and info["status"] in ("green", "yellow")
    assert {"indexed_vectors_count", "segments_count", "config"} <= set(info)
    text = cli("collections", "info", name, *target).stdout
    assert f"points           {N}" in text and f"{DIM} Euclid" in text

    r = cli("collections", "delete", name, *target, input="n\n", code=1)
    assert f"Delete collection '{name}' and its {N} points?" in r.stderr
    assert name in cli("collections", "list", *target).stdout
    cli("collections", "delete", name, *target, input="y\n")
    assert name not in cli("collections", "list", *target).stdout
    assert "does not exist" in cli("collections", "delete", name, "--yes", *target, code=1).stderr
    assert "doesn't exist" in cli("collections", "info", name, *target, code=1).stderr


def test_embedded_commands_do_not_create_a_missing_directory(tmp_path: Path) -> None:
    r = cli("collections", "list", "--path", str(tmp_path / "typo"), code=1)
    assert "no data directory at" in r.stderr
    assert not (tmp_path / "typo").exists()


# --- bench -------------------------------------------------------------------------------------


@pytest.mark.skipif(not (DATASETS / "sift5k_base.npy").exists(), reason="shared data sets not present")
def test_bench_runs_on_a_chosen_dataset() -> None:
    result = cli(
        "bench", "exact", "--dataset", "sift5k", "--queries", "10", "--batch-rounds", "1", "--no-rest", "--no-profile"
    )
    assert "python -m benchmarks exact --dataset sift5k --queries 10" in result.stderr
    assert "sift5k: 5000 x 128" in result.stdout
    assert "Recall of vecdb embedded vs the data set's shipped ground truth: 1.0000" in result.stdout

    r = cli("bench", "reopen", "--dataset", "sift5k", code=2)
    assert "synthetic data only" in r.output
    r = cli("bench", "exact", "--dataset", "nope", code=2)
    assert "available: " in r.output and "sift5k" in r.output
