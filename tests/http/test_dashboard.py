"""The web dashboard at /dashboard, driven in headless Chromium through Playwright against a real server.

Skipped when Playwright or a Chromium binary is missing (the browser is the system's:
Debian's ``chromium`` package, or the path in ``VECDB_CHROMIUM``; Playwright downloads nothing).
``VECDB_UPDATE_SCREENSHOT=1`` also refreshes ``docs/dashboard.png`` for the README.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.brute import reference_top
from tests.harness import ServerProcess, start_server

REPO = Path(__file__).resolve().parents[2]
COLL, DIM, N = "docs", 8, 40
UUID = "5d4e6a2c-8f1b-4c3d-9e7a-0b1c2d3e4f50"
XSS = '<img src=x onerror="window.__xss=1">'
CITIES = ["Berlin", "Paris", "Rome"]
KEY = "dash-key-5c1f"
BERLIN = {"must": [{"key": "city", "match": {"value": "Berlin"}}]}


def _chromium() -> str | None:
    for candidate in (os.environ.get("VECDB_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


try:
    from playwright import sync_api
except ImportError:  # the HTTP-only tests still run
    sync_api = None
else:
    sync_api.expect.set_options(timeout=10_000)
CHROMIUM = _chromium()


def expect(locator):  # type: ignore[no-untyped-def]
    return sync_api.expect(locator)


def _dataset() -> tuple[list[object], np.ndarray, list[dict[str, object]]]:
    rng = np.random.default_rng(11)
    ids: list[object] = [*range(1, N), UUID]
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    payloads: list[dict[str, object]] = [
        {"city": CITIES[i % 3], "n": i, "title": f"document {i}", "tags": ["a", "b"][: i % 3]} for i in range(N)
    ]
    payloads[12]["title"] = XSS  # point 13: user data that looks like markup
    return ids, vectors, payloads


def _serve(path: Path, *extra: str) -> ServerProcess:
    srv = start_server(path, *extra)
    ids, vectors, payloads = _dataset()
    headers = {"api-key": KEY} if extra else {}
    with httpx.Client(base_url=srv.url, headers=headers) as http:
        assert http.put(f"/collections/{COLL}", json={"vectors": {"size": DIM, "distance": "Cosine"}}).is_success
        points = [{"id": i, "vector": v.tolist(), "payload": p} for i, v, p in zip(ids, vectors, payloads, strict=True)]
        assert http.put(f"/collections/{COLL}/points?wait=true", json={"points": points}).is_success
        assert http.put(f"/collections/{COLL}/index", json={"field_name": "city", "field_schema": "keyword"}).is_success
    return srv


@pytest.fixture(scope="module")
def dash_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own (not the session one): the tests need to know every collection on it."""
    srv = _serve(tmp_path_factory.mktemp("dash") / "data")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if sync_api is None:
        pytest.skip("playwright is not installed (pip install playwright; it uses the system Chromium)")
    if CHROMIUM is None:
        pytest.skip("no Chromium binary (apt install chromium, or set VECDB_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, dash_server):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(dash_server.url + "/dashboard")
    yield pg
    context.close()
    assert not errors, errors  # no uncaught script error on any page


def _rest(srv: ServerProcess, method: str, path: str, body: object = None, key: str | None = None) -> dict:
    r = httpx.request(method, srv.url + path, json=body, headers={"api-key": key} if key else {})
    return {
        "status": r.status_code,
        "json": r.json() if r.headers["content-type"].startswith("application/json") else None,
        "text": r.text,
    }


def _open_collection(pg) -> None:  # type: ignore[no-untyped-def]
    pg.click(f'#collections tr[data-name="{COLL}"]')
    expect(pg.locator("#points tbody tr")).to_have_count(20)


def _search(pg, query: str, flt: str = "", limit: int = 10) -> None:  # type: ignore[no-untyped-def]
    pg.fill("#query", query)
    pg.fill("#filter", flt)
    pg.fill("#limit", str(limit))
    pg.click("#search")


def _results(pg) -> list[tuple[object, float]]:  # type: ignore[no-untyped-def]
    expect(pg.locator("#results")).to_be_visible()
    rows = pg.locator("#results tbody tr")
    return [(json.loads(r.get_attribute("data-id")), float(r.get_attribute("data-score"))) for r in rows.all()]


def test_collection_listed_with_size_and_index_status(page, dash_server):
    row = page.locator(f'#collections tr[data-name="{COLL}"]')
    info = _rest(dash_server, "GET", f"/collections/{COLL}")["json"]["result"]
    expect(row.locator(".points-count")).to_have_text(str(N))
    expect(row.locator(".indexed-count")).to_have_text(str(info["indexed_vectors_count"]))
    expect(row.locator(".status")).to_have_text(info["status"])
    expect(row).to_contain_text("8 · Cosine")
    expect(page.locator("#server-version")).to_contain_text("Qdrant API")
    row.click()
    expect(page.locator("#collection-info")).to_contain_text("city: keyword (40 points)")


def test_point_browser_pages_through_payloads(page):
    _open_collection(page)
    first = page.locator("#points tbody tr").first
    expect(first).to_have_attribute("data-id", "1")
    expect(first).to_contain_text('"title":"document 0"')
    expect(page.locator("#browse-status")).to_have_text("Page 1: 20 points")
    page.click("#browse-next")
    expect(page.locator("#browse-status")).to_have_text("Page 2: 20 points (last page)")
    expect(page.locator("#browse-next")).to_be_disabled()
    expect(page.locator("#points tbody tr").last).to_have_attribute("data-id", json.dumps(UUID))
    expect(page.locator("#points td.vector-col").first).to_be_hidden()
    page.check("#show-vectors")
    expect(page.locator("#points td.vector-col").first).to_contain_text("(8 dims)")
    # the filter editor also narrows the browser
    page.fill("#filter", json.dumps(BERLIN))
    page.click("#browse-first")
    expect(page.locator("#browse-status")).to_have_text("Page 1: 14 points matching the filter (last page)")
    page.locator('#points tr[data-id="4"] button').click()  # "Similar": query by that point's id
    expect(page.locator("#query")).to_have_value("4")
    assert 4 not in [i for i, _ in _results(page)]


def test_search_by_vector_with_filter_matches_rest_and_brute_force(page, dash_server, tmp_path):
    _open_collection(page)
    ids, vectors, payloads = _dataset()
    query = np.random.default_rng(3).standard_normal(DIM).round(3).tolist()
    _search(page, json.dumps(query), json.dumps(BERLIN), limit=5)
    shown = _results(page)
    body = {"query": query, "filter": BERLIN, "limit": 5, "with_payload": True}
    rest = [
        (p["id"], p["score"])
        for p in _rest(dash_server, "POST", f"/collections/{COLL}/points/query", body)["json"]["result"]["points"]
    ]
    assert shown == rest  # ids and scores, exactly what the API answers
    berlin = np.array([p["city"] == "Berlin" for p in payloads])
    exact = reference_top(vectors, ids, np.array(query), "Cosine", 5, allowed=berlin)
    assert [i for i, _ in shown] == [i for i, _ in exact]
    assert [s for _, s in shown] == pytest.approx([s for _, s in exact], abs=1e-5)
    expect(page.locator("#search-status")).to_contain_text("5 results")
    expect(page.locator("#results tbody tr").first).to_contain_text('"city":"Berlin"')
    # the browser follows the search's filter
    expect(page.locator("#browse-status")).to_have_text("Page 1: 14 points matching the filter (last page)")
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    if os.environ.get("VECDB_UPDATE_SCREENSHOT"):
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "dashboard.png", REPO / "docs" / "dashboard.png")


@pytest.mark.parametrize("point", [7, UUID])
def test_search_by_point_id(page, dash_server, point):
    _open_collection(page)
    _search(page, str(point), limit=4)
    shown = _results(page)
    body = {"query": point, "limit": 4, "with_payload": True}
    rest = _rest(dash_server, "POST", f"/collections/{COLL}/points/query", body)["json"]["result"]["points"]
    assert shown == [(p["id"], p["score"]) for p in rest]
    assert point not in [i for i, _ in shown]  # query by id leaves the point itself out, as Qdrant does


def test_named_vectors_pick_the_space(page, dash_server):
    name = "named"
    vectors = {"text": {"size": 2, "distance": "Dot"}, "image": {"size": 3, "distance": "Euclid"}}
    with httpx.Client(base_url=dash_server.url) as http:
        assert http.put(f"/collections/{name}", json={"vectors": vectors}).is_success
        points = [{"id": i, "vector": {"text": [i, 1.0], "image": [0.0, i, -i]}} for i in range(1, 6)]
        assert http.put(f"/collections/{name}/points?wait=true", json={"points": points}).is_success
    page.click("#refresh")
    expect(page.locator(f'#collections tr[data-name="{name}"]')).to_contain_text("text: 2 · Dot, image: 3 · Euclid")
    page.click(f'#collections tr[data-name="{name}"]')
    expect(page.locator("#points tbody tr")).to_have_count(5)
    page.select_option("#using", label="image")
    _search(page, "[0, 2.2, -2.2]", limit=2)
    rest = _rest(
        dash_server,
        "POST",
        f"/collections/{name}/points/query",
        {"query": [0, 2.2, -2.2], "using": "image", "limit": 2},
    )["json"]["result"]["points"]
    assert _results(page) == [(p["id"], p["score"]) for p in rest]
    assert [p["id"] for p in rest] == [2, 3]


def test_bad_filters_show_client_and_server_errors(page, dash_server):
    _open_collection(page)
    _search(page, "[1,0,0,0,0,0,0,0]", '{"must": [')
    expect(page.locator("#filter-error")).to_contain_text("Filter is not valid JSON")
    expect(page.locator("#filter")).to_have_class("invalid")
    expect(page.locator("#results")).to_be_hidden()
    bad = {"must": [{"key": "n", "match": {"value": 1.5}}]}
    _search(page, "[1,0,0,0,0,0,0,0]", json.dumps(bad))
    expect(page.locator("#filter-error")).to_be_hidden()
    answer = _rest(dash_server, "POST", f"/collections/{COLL}/points/query", {"query": [1] + [0] * 7, "filter": bad})
    assert answer["status"] == 400
    expect(page.locator("#search-error")).to_have_text(answer["json"]["status"]["error"])  # verbatim
    expect(page.locator("#search-error")).to_have_attribute("data-status", "400")
    _search(page, "[1, 2]")
    expect(page.locator("#search-error")).to_contain_text("Vector dimension error")
    _search(page, "not-an-id")
    expect(page.locator("#search-error")).to_be_visible()


def test_payload_markup_renders_as_text(page):
    _open_collection(page)
    _search(page, "[1,0,0,0,0,0,0,0]", json.dumps({"must": [{"has_id": [13]}]}), limit=1)
    cell = page.locator('#results tr[data-id="13"] pre.payload')
    expect(cell).to_contain_text(json.dumps(XSS)[1:-1])  # the payload's JSON, markup and all, as text
    browser_cell = page.locator('#points tr[data-id="13"] pre.payload')
    expect(browser_cell).to_contain_text("<img src=x onerror=")
    assert page.locator("img").count() == 0
    assert page.evaluate("window.__xss") is None


def test_static_routes_and_no_path_traversal(dash_server):
    with httpx.Client(base_url=dash_server.url) as http:
        r = http.get("/dashboard")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert http.get("/dashboard/app.js").headers["content-type"].startswith("text/javascript")
        assert http.get("/dashboard/style.css").headers["content-type"].startswith("text/css")
        for path in ("/dashboard", "/dashboard/app.js", "/dashboard/style.css"):
            assert b"://" not in http.get(path).content, path  # no external resource of any kind
        slash = http.get("/dashboard/")
        assert slash.status_code == 308 and slash.headers["location"] == "../dashboard"
        for bad in (
            "/dashboard/index.html",
            "/dashboard/..%2Froutes_dashboard.py",
            "/dashboard/%2e%2e",
            "/dashboard/__init__.py",
        ):
            assert http.get(bad).status_code == 404, bad


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = _serve(tmp_path_factory.mktemp("dash-keyed") / "data", "--api-key", KEY)
    yield srv
    srv.stop()


def test_dashboard_files_are_open_and_data_routes_are_not(keyed):
    for path in ("/dashboard", "/dashboard/", "/dashboard/app.js", "/dashboard/style.css"):
        assert httpx.get(keyed.url + path).status_code in (200, 308), path
    for path in (
        "/dashboard/nothing",
        "/dashboard/..%2Fcollections",
        "/dashboardx",
        "/dashboard/app.js/x",
        "/collections",
        f"/collections/{COLL}",
    ):
        assert httpx.get(keyed.url + path).status_code == 401, path
    assert _rest(keyed, "POST", f"/collections/{COLL}/points/scroll", {})["status"] == 401
    assert _rest(keyed, "POST", f"/collections/{COLL}/points/scroll", {}, key=KEY)["status"] == 200


def test_api_key_entered_in_the_page(browser, keyed):
    context = browser.new_context()
    pg = context.new_page()
    pg.goto(keyed.url + "/dashboard")
    expect(pg.locator("#banner")).to_contain_text("API key required")
    expect(pg.locator("#collections-error")).to_have_text("API key required")
    pg.fill("#api-key", "wrong")
    pg.click("#key-form button[type=submit]")
    expect(pg.locator("#banner")).to_contain_text("not valid")
    pg.fill("#api-key", KEY)
    pg.click("#key-form button[type=submit]")
    expect(pg.locator("#banner")).to_be_hidden()
    expect(pg.locator(f'#collections tr[data-name="{COLL}"] .points-count')).to_have_text(str(N))
    _open_collection(pg)
    _search(pg, "7", limit=3)
    assert len(_results(pg)) == 3
    pg.reload()  # the key is kept for the tab (sessionStorage)
    expect(pg.locator(f'#collections tr[data-name="{COLL}"]')).to_be_visible()
    pg.click("#key-forget")
    expect(pg.locator("#banner")).to_contain_text("API key required")
    assert pg.evaluate("sessionStorage.length") == 0
    context.close()
