"""The remote client and ``import vecdb`` load no engine: no faiss, LMDB or numba, no engine layers.

A fresh interpreter imports the module and reports ``sys.modules``: an import chain that pulls the
engine in (say ``vecdb/client/base.py`` importing from ``vecdb.engine``) shows up here, not as a
slow start on a machine that has only the remote client's dependencies.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = (
    "faiss",
    "lmdb",
    "numba",
    "vecdb.engine",
    "vecdb.storage",
    "vecdb.index",
    "vecdb.filtering",
    # the server and the other transports are no business of a client either
    "vecdb.api",
    "vecdb.cli",
    "vecdb.transfer",
    "vecdb.client.embedded",
    "fastapi",
    "uvicorn",
)


def loaded_after(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]


@pytest.mark.parametrize(
    "code",
    [
        "import vecdb_client",
        "import vecdb",
        "import vecdb.client.base, vecdb.service, vecdb.models, vecdb.errors",
        # building a client and its requests, short of sending one
        "\n".join(
            [
                "from vecdb_client import RemoteClient",
                "from vecdb.models.query import QueryRequest",
                "c = RemoteClient('http://127.0.0.1:9')",
                "QueryRequest.model_validate({'query': [0.1, 0.2], 'filter': {'must': [{'is_empty': {'key': 'k'}}]}})",
                "c.close()",
            ]
        ),
    ],
    ids=["vecdb_client", "vecdb", "shared-layers", "remote-client-built"],
)
def test_import_loads_no_engine(code: str):
    assert heavy(loaded_after(code)) == []


def test_the_check_sees_an_engine_import():
    """The probe itself works: importing the embedded client does load the engine."""
    found = heavy(loaded_after("import vecdb; vecdb.Client"))
    assert "vecdb.engine" in found and "lmdb" in found


def test_the_server_without_ray_loads_no_ray(tmp_path: Path):
    """``vecdb serve`` without ``--ray`` (its app, its CLI) never imports Ray; the cluster modules do only
    where asked (``vecdb.cluster.actors`` imports it on first use, not at import)."""
    code = "\n".join(
        [
            "import vecdb.cli.main",
            "from vecdb.api.app import create_app",
            "from vecdb.api.settings import ServerSettings",
            f"create_app(ServerSettings(path={str(tmp_path / 'data')!r})).state.service.close()",
            "import vecdb.cluster.actors, vecdb.cluster.service",
        ]
    )
    modules = loaded_after(code)
    assert "vecdb.api.app" in modules and not [m for m in modules if m == "ray" or m.startswith("ray.")]
