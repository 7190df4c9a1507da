"""Collection snapshots: REST shapes against a real server, consistency under writes, restore into
another data directory (CLI, recover endpoint, upload), error answers, and qdrant-client's calls."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner
from vecdb_client import RemoteClient

import vecdb
from tests.brute import reference_top
from tests.harness import ServerProcess
from tests.helpers import collection, inspection, wait_loaded
from vecdb.engine.checkpoints import INDEX_DIR
from vecdb.errors import InvalidInput, NotFound

DIM = 8


def new_name(prefix: str = "s") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _points(n: int, seed: int, dim: int = DIM, version: int = 0) -> tuple[list[int], np.ndarray, list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    payloads = [{"i": i, "kind": ["a", "b", "c"][i % 3], "v": version} for i in range(n)]
    return list(range(n)), vectors, payloads


def _make_collection(http: httpx.Client, name: str, n: int = 200, **config: Any) -> np.ndarray:
    body = {"vectors": {"size": DIM, "distance": "Cosine"}, **config}
    assert http.put(f"/collections/{name}", json=body).status_code == 200
    ids, vectors, payloads = _points(n, seed=len(name))
    r = http.put(
        f"/collections/{name}/points?wait=true",
        json={"batch": {"ids": ids, "vectors": vectors.tolist(), "payloads": payloads}},
    )
    assert r.status_code == 200, r.text
    r = http.put(f"/collections/{name}/index?wait=true", json={"field_name": "kind", "field_schema": "keyword"})
    assert r.status_code == 200, r.text
    return vectors


def _scroll_all(http: httpx.Client, name: str) -> list[dict[str, Any]]:
    r = http.post(
        f"/collections/{name}/points/scroll", json={"limit": 10_000, "with_payload": True, "with_vector": True}
    )
    assert r.status_code == 200, r.text
    return sorted(r.json()["result"]["points"], key=lambda p: p["id"])


def _error(r: httpx.Response) -> str:
    return str(r.json()["status"]["error"])


@pytest.fixture
def http(server: ServerProcess) -> Any:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


# --------------------------------------------------------------------------- REST round trip


def test_create_list_download_delete_round_trip(http: httpx.Client, name: str) -> None:
    _make_collection(http, name)
    r = http.post(f"/collections/{name}/snapshots")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"result", "status", "time"} and body["status"] == "ok"
    desc = body["result"]
    assert set(desc) == {"name", "creation_time", "size", "checksum"}
    assert desc["name"].startswith(f"{name}-") and desc["name"].endswith(".snapshot")
    assert len(desc["checksum"]) == 64 and desc["size"] > 0

    listed = http.get(f"/collections/{name}/snapshots").json()["result"]
    assert listed == [desc]

    r = http.get(f"/collections/{name}/snapshots/{desc['name']}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert len(r.content) == desc["size"]
    assert hashlib.sha256(r.content).hexdigest() == desc["checksum"]

    r = http.delete(f"/collections/{name}/snapshots/{desc['name']}")
    assert r.status_code == 200 and r.json()["result"] is True
    assert http.get(f"/collections/{name}/snapshots").json()["result"] == []
    for method in ("GET", "DELETE"):
        r = http.request(method, f"/collections/{name}/snapshots/{desc['name']}")
        assert r.status_code == 404 and desc["name"] in _error(r)


def test_wait_false_is_accepted_and_done_in_the_background(http: httpx.Client, name: str) -> None:
    _make_collection(http, name, n=50)
    r = http.post(f"/collections/{name}/snapshots", params={"wait": "false"})
    assert r.status_code == 202
    body = r.json()
    assert set(body) == {"status", "time"} and body["status"] == "accepted"
    deadline = time.monotonic() + 10
    while not http.get(f"/collections/{name}/snapshots").json()["result"]:
        assert time.monotonic() < deadline, "background snapshot never appeared"
        time.sleep(0.05)


# --------------------------------------------------------------------------- errors


def test_errors_are_4xx_naming_the_snapshot(http: httpx.Client, name: str, tmp_path: Path) -> None:
    _make_collection(http, name, n=20)
    snap = http.post(f"/collections/{name}/snapshots").json()["result"]

    r = http.get(f"/collections/{name}/snapshots/nope.snapshot")
    assert r.status_code == 404 and "nope.snapshot" in _error(r)
    for bad in ("..%2F..%2Fcatalog%2Fdata.mdb", ".hidden.snapshot", "a%2Fb.snapshot", "x.txt", "..%2F.lock"):
        for method in ("GET", "DELETE"):
            r = http.request(method, f"/collections/{name}/snapshots/{bad}")
            assert r.status_code == 400, (bad, r.status_code, r.text)
            assert "snapshot name" in _error(r) and httpx.URL("/" + bad).path.lstrip("/") in _error(r)
    r = http.get(f"/collections/{new_name('missing')}/snapshots")
    assert r.status_code == 404 and "doesn't exist" in _error(r)
    r = http.post(f"/collections/{new_name('missing')}/snapshots")
    assert r.status_code == 404

    target = new_name("rec")
    cases = [
        ({"location": snap["name"], "checksum": "0" * 64}, 400, "checksum mismatch"),
        ({"location": snap["name"], "checksum": "xyz"}, 400, "checksum"),
        ({"location": "http://127.0.0.1:1/x.snapshot"}, 400, "file://"),
        ({"location": "s3://bucket/x.snapshot"}, 400, "file://"),
        ({"location": "nope.snapshot"}, 404, "nope.snapshot"),
        ({"location": "../../catalog/data.mdb"}, 400, "../../catalog/data.mdb"),
        ({"location": f"file://{tmp_path}/absent.snapshot"}, 404, "absent.snapshot"),
        ({"location": "file://relative/x.snapshot"}, 400, "file://"),
        ({"location": snap["name"], "priority": "sometimes"}, 400, "priority"),
    ]
    junk = tmp_path / "junk.snapshot"
    junk.write_bytes(os.urandom(3000))
    cases.append(({"location": junk.as_uri()}, 400, "not a valid vecdb collection snapshot"))
    for body, status, text in cases:
        r = http.put(f"/collections/{target}/snapshots/recover", json=body)
        assert r.status_code == status, (body, r.status_code, r.text)
        assert text in _error(r), (body, r.text)
    r = http.post(f"/collections/{target}/snapshots/upload", files={"snapshot": ("x", b"not a tar")})
    assert r.status_code == 400 and "not a valid vecdb collection snapshot" in _error(r)
    r = http.post(f"/collections/{target}/snapshots/upload", files={"other": ("x", b"...")})
    assert r.status_code == 400 and "`snapshot`" in _error(r)
    assert http.get(f"/collections/{target}/exists").json()["result"]["exists"] is False


# --------------------------------------------------------------------------- consistency under writes


def test_snapshot_while_writing_restores_one_whole_commit(http: httpx.Client, name: str, server: ServerProcess) -> None:
    """A writer overwrites all N points per request (one transaction), stamping version v into every
    payload and every vector; snapshots taken meanwhile must each restore exactly one version."""
    n = 60
    create = {
        "vectors": {"size": DIM, "distance": "Euclid"},
        "optimizers_config": {"indexing_threshold": 1, "flush_interval_sec": 0},
    }  # index + checkpoints churn
    assert http.put(f"/collections/{name}", json=create).status_code == 200
    stop = threading.Event()
    done: list[int] = []
    failures: list[str] = []

    def write() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as w:
            v = 0
            while not stop.is_set():
                v += 1
                vectors = [[float(v), float(i)] + [0.5] * (DIM - 2) for i in range(n)]
                r = w.put(
                    f"/collections/{name}/points?wait=true",
                    json={
                        "batch": {
                            "ids": list(range(n)),
                            "vectors": vectors,
                            "payloads": [{"v": v, "i": i} for i in range(n)],
                        }
                    },
                )
                if r.status_code != 200:
                    failures.append(r.text)
                    return
                done.append(v)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while not done:
            time.sleep(0.01)
        snaps = []
        for _ in range(4):
            time.sleep(0.15)
            r = http.post(f"/collections/{name}/snapshots")
            assert r.status_code == 200, r.text
            snaps.append(r.json()["result"]["name"])
    finally:
        stop.set()
        writer.join()
    assert not failures, failures
    seen = []
    for k, snap in enumerate(snaps):
        restored = f"{name}_r{k}"
        r = http.put(f"/collections/{restored}/snapshots/recover", json={"location": snap})
        assert r.status_code == 200 and r.json()["result"] is True, r.text
        points = _scroll_all(http, restored)
        assert len(points) == n
        assert http.post(f"/collections/{restored}/points/count", json={"exact": True}).json()["result"]["count"] == n
        versions = {p["payload"]["v"] for p in points}
        assert len(versions) == 1, f"torn snapshot {snap}: versions {sorted(versions)}"
        (v,) = versions
        assert all(p["vector"][0] == v and p["vector"][1] == p["id"] for p in points)
        seen.append(v)
        query = [float(v), 7.2] + [0.5] * (DIM - 2)
        hits = http.post(f"/collections/{restored}/points/query", json={"query": query, "limit": 3}).json()
        assert [h["id"] for h in hits["result"]["points"]] == [7, 8, 6]
    assert seen == sorted(seen) and seen[-1] <= done[-1] and seen[0] >= 1


# --------------------------------------------------------------------------- restore elsewhere


def _wait_index_saved(client: vecdb.Client, name: str, timeout: float = 20) -> dict[str, Any]:
    """Until the optimizer indexed everything and checkpointed it; returns the manifest."""
    deadline = time.monotonic() + timeout
    while True:
        seen = inspection(client, name)
        manifest, state = seen.manifests.get(0), seen.indexes.get(0)
        if manifest is not None and state is not None:
            saved = (manifest["covered"], manifest["ntotal"]) == (state.covered, state.index.ntotal)
            if saved and state.covered == seen.view_rows and not seen.pending:
                return manifest  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, "index never checkpointed"
        time.sleep(0.05)


def test_cli_restore_into_another_data_dir_loads_the_copied_index(tmp_path: Path, server: ServerProcess) -> None:
    from vecdb.cli.main import app

    runner = CliRunner()
    src, dst = tmp_path / "src", tmp_path / "dst"
    n = 1500
    ids, vectors, payloads = _points(n, seed=3, dim=16)
    with vecdb.Client(src) as client:
        client.create_collection(
            "docs",
            {"size": 16, "distance": "Cosine"},
            hnsw_config={"m": 8, "ef_construct": 32},
            optimizers_config={"indexing_threshold": 1, "flush_interval_sec": 0},
        )
        client.upsert("docs", points={"ids": ids, "vectors": vectors, "payloads": payloads})
        client.create_payload_index("docs", "kind", "keyword")
        client.delete("docs", [0, 1, 2])
        client.set_payload("docs", {"tag": "x"}, points=[10, 11])
        manifest = _wait_index_saved(client, "docs")
        original = client.scroll("docs", limit=n, with_payload=True, with_vectors=True)[0]
        info = client.get_collection("docs")
        queries = np.random.default_rng(9).normal(size=(5, 16)).astype(np.float32)
        ann_before = [[(p.id, p.score) for p in client.query_points("docs", q, limit=10).points] for q in queries]

    result = runner.invoke(app, ["snapshots", "create", "docs", "--path", str(src)])
    assert result.exit_code == 0, result.output
    snap_name = result.output.split()[2]
    snap_file = src / "snapshots" / "docs" / snap_name
    assert snap_file.is_file() and Path(str(snap_file) + ".sha256").is_file()
    listed = runner.invoke(app, ["snapshots", "list", "docs", "--path", str(src)])
    assert listed.exit_code == 0 and snap_name in listed.output

    # a data directory a server holds is refused: restoring there must go through the server
    held = runner.invoke(app, ["snapshots", "restore", str(snap_file), "--path", str(server.path)])
    assert held.exit_code == 1 and "--url" in held.output

    result = runner.invoke(app, ["snapshots", "restore", str(snap_file), "--path", str(dst), "--collection", "copy"])
    assert result.exit_code == 0, result.output
    assert f"{n - 3} points" in result.output and "checksum verified" in result.output

    with vecdb.Client(dst) as client:
        state = wait_loaded(client, "copy", 10).indexes[0]  # loaded from the copied file, not rebuilt
        assert (state.index.ntotal, state.covered) == (manifest["ntotal"], manifest["covered"])
        assert sorted(os.listdir(dst / "collections" / "copy" / INDEX_DIR)) == [
            manifest["file"],
            manifest["file"] + ".labels.npy",
        ]
        restored = client.scroll("copy", limit=n, with_payload=True, with_vectors=True)[0]
        assert [(p.id, p.payload, p.vector) for p in restored] == [(p.id, p.payload, p.vector) for p in original]
        info2 = client.get_collection("copy")
        assert info2.config == info.config and info2.points_count == n - 3
        assert {k: (v.data_type, v.points) for k, v in info2.payload_schema.items()} == {
            k: (v.data_type, v.points) for k, v in info.payload_schema.items()
        } and "kind" in info2.payload_schema
        live_ids = [p.id for p in original]
        live = np.array([vectors[i] for i in live_ids])
        for q, before in zip(queries, ann_before, strict=True):
            ann = [(p.id, p.score) for p in client.query_points("copy", q, limit=10).points]
            assert ann == before
            exact = client.query_points("copy", q, limit=10, search_params={"exact": True}).points
            expected = reference_top(live, live_ids, q, "Cosine", 10)
            assert [p.id for p in exact] == [i for i, _ in expected]
            assert np.allclose([p.score for p in exact], [s for _, s in expected], atol=1e-5)
        kind_b = client.count("copy", count_filter={"must": [{"key": "kind", "match": {"value": "b"}}]}).count
        assert kind_b == sum(1 for p in original if p.payload["kind"] == "b")


def _indexed_client(path: Path, n: int = 600) -> tuple[vecdb.Client, np.ndarray, dict[str, Any]]:
    client = vecdb.Client(path)
    client.create_collection(
        "c",
        {"size": DIM, "distance": "Cosine"},
        hnsw_config={"m": 8, "ef_construct": 32},
        optimizers_config={"indexing_threshold": 1, "flush_interval_sec": 0},
    )
    ids, vectors, payloads = _points(n, seed=11)
    client.upsert("c", points={"ids": ids, "vectors": vectors, "payloads": payloads})
    return client, vectors, _wait_index_saved(client, "c")


def _checkpoint_in_another_thread(coll: Any) -> None:
    """What the optimizer does concurrently: save the graph under a new name, commit its manifest,
    remove the files of the old one (on its own thread, as LMDB wants one transaction per thread)."""
    t = threading.Thread(target=coll.optimizer.checkpoint_space, args=(0,))
    t.start()
    t.join()


def test_a_checkpoint_racing_the_snapshot_makes_it_retry_with_the_new_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vecdb.engine.backup import archive as snapshot_archive

    client, vectors, manifest = _indexed_client(tmp_path / "a")
    coll = collection(client, "c")
    real_pin = snapshot_archive._pin_index_files
    calls: list[dict[int, Any]] = []

    def racing_pin(folder: Path, manifests: dict[int, Any]) -> Any:
        calls.append(manifests)
        if len(calls) == 1:  # between the manifest read and the open, a checkpoint replaces the files
            _checkpoint_in_another_thread(coll)
        return real_pin(folder, manifests)

    monkeypatch.setattr(snapshot_archive, "_pin_index_files", racing_pin)
    with client:
        desc = client.create_snapshot("c")
        assert desc is not None
        snap_file = tmp_path / "a" / "snapshots" / "c" / desc.name
    assert len(calls) == 2 and calls[0][0]["file"] == manifest["file"] != calls[1][0]["file"]
    with vecdb.Client(tmp_path / "b") as other:
        other.recover_snapshot("c", snap_file.as_uri())
        assert 0 in wait_loaded(other, "c", 10).indexes  # the new files came along
        assert os.listdir(tmp_path / "b" / "collections" / "c" / INDEX_DIR)[0].startswith(calls[1][0]["file"])


def test_index_files_that_keep_vanishing_are_left_out_and_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vecdb.engine.backup import archive as snapshot_archive

    client, vectors, _ = _indexed_client(tmp_path / "a")
    coll = collection(client, "c")
    real_pin = snapshot_archive._pin_index_files

    def always_racing(folder: Path, manifests: dict[int, Any]) -> Any:
        _checkpoint_in_another_thread(coll)
        return real_pin(folder, manifests)

    monkeypatch.setattr(snapshot_archive, "_pin_index_files", always_racing)
    with client:
        desc = client.create_snapshot("c")
        assert desc is not None
        snap_file = tmp_path / "a" / "snapshots" / "c" / desc.name
    assert snapshot_archive.read_meta(snap_file)["indexes"] == {}
    with vecdb.Client(tmp_path / "b") as other:
        other.recover_snapshot("c", snap_file.as_uri())
        assert other.count("c").count == len(vectors)
        q = vectors[17] + 0.01
        hits = other.query_points("c", q, limit=5, search_params={"exact": True}).points
        assert [h.id for h in hits] == [i for i, _ in reference_top(vectors, list(range(len(vectors))), q, "Cosine", 5)]
        _wait_index_saved(other, "c")  # the index is rebuilt from the restored vectors


def test_ivf_pq_index_files_travel_with_the_snapshot(tmp_path: Path) -> None:
    n = 1500  # IVF-PQ trains from 1024 points on
    ids, vectors, _ = _points(n, seed=13, dim=16)
    with vecdb.Client(tmp_path / "a") as client:
        client.create_collection(
            "v",
            {"size": 16, "distance": "Cosine"},
            index={"type": "ivf_pq", "nlist": 8, "pq_m": 4},
            optimizers_config={"indexing_threshold": 1, "flush_interval_sec": 0},
        )
        client.upsert("v", points={"ids": ids, "vectors": vectors})
        manifest = _wait_index_saved(client, "v")
        before = [p.id for p in client.query_points("v", vectors[5], limit=10).points]
        desc = client.create_snapshot("v")
        assert desc is not None
    snap_file = tmp_path / "a" / "snapshots" / "v" / desc.name
    with vecdb.Client(tmp_path / "b") as other:
        other.recover_snapshot("v", snap_file.as_uri(), checksum=desc.checksum)
        state = wait_loaded(other, "v", 10).indexes[0]
        assert type(state.index).__name__ == "IvfPqIndex" and state.covered == manifest["covered"]
        assert sorted(os.listdir(tmp_path / "b" / "collections" / "v" / INDEX_DIR)) == [
            manifest["file"],
            manifest["file"] + ".json",
        ]
        assert [p.id for p in other.query_points("v", vectors[5], limit=10).points] == before


def test_restore_replaces_a_collection_and_checks_the_stored_checksum(tmp_path: Path) -> None:
    runner = CliRunner()
    from vecdb.cli.snapshots import app

    data = tmp_path / "data"
    with vecdb.Client(data) as client:
        client.create_collection("c", {"size": 4, "distance": "Dot"})
        client.upsert("c", points=[{"id": i, "vector": [i, 1, 0, 0], "payload": {"n": i}} for i in range(5)])
        client.update_collection_aliases([{"create_alias": {"alias_name": "cur", "collection_name": "c"}}])
        desc = client.create_snapshot("c")
        assert desc is not None and client.list_snapshots("c") == [desc]
        client.upsert("c", points=[{"id": 99, "vector": [1, 1, 1, 1]}])
        assert client.recover_snapshot("cur", desc.name) is True  # through the alias: replaces c, keeps the alias
        assert client.count("c").count == 5 and client.get_aliases()[0].alias_name == "cur"
        with pytest.raises(NotFound, match="nope.snapshot"):
            client.delete_snapshot("c", "nope.snapshot")
        with pytest.raises(InvalidInput, match="snapshot name"):
            client.delete_snapshot("c", "../c.snapshot")
        snap_file = data / "snapshots" / "c" / desc.name

    # a corrupted copy elsewhere, with the original checksum beside it: the restore refuses it
    bad = tmp_path / "bad.snapshot"
    raw = bytearray(snap_file.read_bytes())
    raw[-2000] ^= 0xFF
    bad.write_bytes(bytes(raw))
    Path(str(bad) + ".sha256").write_text(f"{desc.checksum}  bad.snapshot\n")
    result = runner.invoke(app, ["restore", str(bad), "--path", str(tmp_path / "other")])
    assert result.exit_code == 1 and "checksum mismatch" in result.output
    result = runner.invoke(app, ["restore", str(snap_file), "--path", str(tmp_path / "other"), "--checksum", "ab" * 32])
    assert result.exit_code == 1 and "checksum mismatch" in result.output
    result = runner.invoke(
        app, ["restore", str(snap_file), "--path", str(tmp_path / "other"), "--checksum", desc.checksum]
    )
    assert result.exit_code == 0 and "restored collection c" in result.output


def test_leftovers_of_a_crash_are_swept_at_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with vecdb.Client(data) as client:
        client.create_collection("c", {"size": 4, "distance": "Dot"})
        desc = client.create_snapshot("c")
        assert desc is not None
    folder = data / "snapshots" / "c"
    (folder / ".tmp-c-x.snapshot").write_bytes(b"half")
    (folder / ".tmp-abc.work").mkdir()
    (folder / "gone.snapshot.sha256").write_text("0" * 64)
    (data / "snapshots" / ".tmp-upload-1.snapshot").write_bytes(b"half")
    with vecdb.Client(data) as client:
        assert [d.name for d in client.list_snapshots("c")] == [desc.name]
        assert client.get_collections().collections[0].name == "c"  # snapshots/ is never taken for a collection
    assert sorted(os.listdir(folder)) == [desc.name, desc.name + ".sha256"]
    assert os.listdir(data / "snapshots") == ["c"]


# --------------------------------------------------------------------------- remote client, upload, CLI --url


def test_remote_client_upload_download_and_cli_url(server: ServerProcess, tmp_path: Path) -> None:
    from vecdb.cli.snapshots import app

    runner = CliRunner()
    name = new_name("up")
    with RemoteClient(server.url) as client:
        client.create_collection(name, {"size": DIM, "distance": "Cosine"})
        ids, vectors, payloads = _points(40, seed=5)
        client.upsert(name, points={"ids": ids, "vectors": vectors, "payloads": payloads})
        desc = client.create_snapshot(name)
        assert desc is not None and desc in client.list_snapshots(name)
        local = client.download_snapshot(name, desc.name, tmp_path / "copy.snapshot")
        assert hashlib.sha256(local.read_bytes()).hexdigest() == desc.checksum

        target = new_name("upr")
        assert client.upload_snapshot(target, local, checksum=desc.checksum) is True
        assert client.count(target).count == 40
        with pytest.raises(InvalidInput, match="checksum mismatch"):
            client.upload_snapshot(target, local, checksum="0" * 64)
        assert client.retrieve(target, [3], with_vectors=True)[0].payload == payloads[3]

        out = tmp_path / "cli.snapshot"
        result = runner.invoke(app, ["download", name, desc.name, "--url", server.url, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert Path(str(out) + ".sha256").read_text().split()[0] == desc.checksum
        target2 = new_name("cli")
        result = runner.invoke(app, ["restore", str(out), "--url", server.url, "--collection", target2])
        assert result.exit_code == 0, result.output
        assert "40 points" in result.output and client.count(target2).count == 40
        result = runner.invoke(app, ["delete", name, desc.name, "--url", server.url])
        assert result.exit_code == 0 and client.list_snapshots(name) == []
        result = runner.invoke(app, ["create", name])
        assert result.exit_code == 1 and "exactly one of --path" in result.output


# --------------------------------------------------------------------------- qdrant-client


def test_qdrant_client_snapshot_calls(server: ServerProcess) -> None:
    pytest.importorskip("qdrant_client")
    from qdrant_client import QdrantClient
    from qdrant_client import models as m

    qc = QdrantClient(url=server.url, prefer_grpc=False, check_compatibility=True, timeout=30)
    try:
        name = new_name("qc")
        qc.create_collection(name, vectors_config=m.VectorParams(size=DIM, distance=m.Distance.COSINE))
        ids, vectors, payloads = _points(30, seed=7)
        qc.upsert(name, points=m.Batch(ids=ids, vectors=vectors.tolist(), payloads=payloads))
        desc = qc.create_snapshot(name)
        assert isinstance(desc, m.SnapshotDescription) and desc.size > 0 and desc.checksum
        assert [d.name for d in qc.list_snapshots(name)] == [desc.name]
        assert qc.create_snapshot(name, wait=False) is None

        path = server.path / "snapshots" / name / desc.name
        target = new_name("qcr")
        assert (
            qc.recover_snapshot(target, path.as_uri(), checksum=desc.checksum, priority=m.SnapshotPriority.SNAPSHOT)
            is True
        )
        assert qc.count(target).count == 30
        hits = qc.query_points(target, query=vectors[4].tolist(), limit=1).points
        assert hits[0].id == 4 and hits[0].payload == payloads[4]
        later = new_name("qcw")
        assert qc.recover_snapshot(later, desc.name, wait=False) is None
        deadline = time.monotonic() + 10
        while not qc.collection_exists(later):
            assert time.monotonic() < deadline, "background recovery never finished"
            time.sleep(0.05)
        assert qc.count(later).count == 30
        assert qc.recover_snapshot(name, desc.name) is True  # onto itself, by name
        assert qc.count(name).count == 30
        assert qc.delete_snapshot(name, desc.name) is True
        assert desc.name not in [d.name for d in qc.list_snapshots(name)]
    finally:
        qc.close()


def test_uploads_have_their_own_size_limit(tmp_path: Path) -> None:
    """A snapshot is a whole collection: the JSON body limit does not cap its upload, its own limit does."""
    from tests.harness import start_server

    srv = start_server(tmp_path / "data", "--max-request-bytes", "4096", "--max-snapshot-upload-bytes", "200000")
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as http:
            name = new_name()
            assert (
                http.put(f"/collections/{name}", json={"vectors": {"size": DIM, "distance": "Dot"}}).status_code == 200
            )
            for lo in range(0, 300, 20):  # each body under 4096 bytes
                ids, vectors, _ = _points(20, seed=lo)
                r = http.put(
                    f"/collections/{name}/points?wait=true",
                    json={"batch": {"ids": [i + lo for i in ids], "vectors": vectors.round(3).tolist()}},
                )
                assert r.status_code == 200, r.text
            desc = http.post(f"/collections/{name}/snapshots").json()["result"]
            data = http.get(f"/collections/{name}/snapshots/{desc['name']}").content
            assert 4096 < len(data) < 200_000
            r = http.post(
                f"/collections/{name}_copy/snapshots/upload",
                params={"checksum": desc["checksum"]},
                files={"snapshot": ("s.snapshot", data)},
            )
            assert r.status_code == 200, r.text
            assert http.post(f"/collections/{name}_copy/points/count", json={}).json()["result"]["count"] == 300
            r = http.post(f"/collections/{name}_big/snapshots/upload", files={"snapshot": ("s", b"\0" * 300_000)})
            assert r.status_code == 413 and "--max-snapshot-upload-bytes" in _error(r)
            r = http.put(
                f"/collections/{name}/points",
                content=b"{" + b" " * 5000 + b"}",
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 413 and "--max-request-bytes" in _error(r)
    finally:
        srv.stop()
