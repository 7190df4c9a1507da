"use strict";
// vecdb dashboard: a page over the server's own REST API (the Qdrant-compatible one), no dependencies.
// Everything the server returns is user data and is rendered as text: textContent / text nodes, never innerHTML.

const ROOT = new URL(".", location.href); // the server root, so the page also works behind a path prefix
const KEY = "vecdb.apiKey"; // sessionStorage: the key lives as long as the tab
const PAGE = 20;
const $ = (id) => document.getElementById(id);
const state = { name: null, info: null, spaces: [], page: 0, next: null, filter: undefined };

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// A DOM element; string and number children become text nodes (Element.append), so data is never parsed as HTML.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined).map((c) => (c instanceof Node ? c : String(c))));
  return node;
}

function json(value) { return el("pre", { className: "payload" }, JSON.stringify(value)); }

// Calls the API; resolves to the whole envelope. Errors carry the server's message verbatim (status.error).
async function api(method, path, body) {
  const headers = {};
  const key = sessionStorage.getItem(KEY);
  if (key) headers["api-key"] = key;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(new URL(path, ROOT), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = JSON.parse(text); } catch { /* auth errors are plain text */ }
  if (res.status === 401) {
    showBanner(sessionStorage.getItem(KEY) ? "API key required: the key entered is not valid for this server."
      : "API key required: enter the server's API key above.");
    throw new ApiError(401, "API key required");
  }
  if (!res.ok) throw new ApiError(res.status, (data && data.status && data.status.error) || text || res.statusText);
  return data;
}

const coll = (name, rest = "") => `collections/${encodeURIComponent(name)}${rest}`;

function showBanner(text) { $("banner").textContent = text; $("banner").hidden = false; }

function showError(id, err) {
  const box = $(id);
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = err.message;
  box.title = err.status ? `HTTP ${err.status}` : "";
  box.dataset.status = err.status || "";
  box.hidden = false;
}

function badge(status) { return el("span", { className: `badge ${status}` }, status); }

function vectorsSummary(vectors) {
  if (!vectors || typeof vectors !== "object") return "none";
  if ("size" in vectors) return `${vectors.size} · ${vectors.distance}`;
  const named = Object.entries(vectors).map(([n, p]) => `${n === "" ? '""' : n}: ${p.size} · ${p.distance}`);
  return named.length ? named.join(", ") : "none";
}

function fmtVector(v) {
  if (Array.isArray(v)) {
    if (v.length && Array.isArray(v[0])) return `multivector: ${v.length} × ${v[0].length}`;
    const head = v.slice(0, 8).map((x) => +x.toFixed(4)).join(", ");
    return `[${head}${v.length > 8 ? ", …" : ""}] (${v.length} dims)`;
  }
  if (v && typeof v === "object") {
    if (Array.isArray(v.indices)) return `sparse: ${v.indices.length} entries`;
    return Object.entries(v).map(([n, x]) => `${n === "" ? '""' : n}: ${fmtVector(x)}`).join("\n");
  }
  return "";
}

// ---- collections ----

async function loadCollections() {
  const body = $("collections").tBodies[0];
  try {
    const names = (await api("GET", "collections")).result.collections.map((c) => c.name).sort();
    const infos = await Promise.all(names.map((n) => api("GET", coll(n)).then((r) => r.result, (e) => e)));
    showError("collections-error", null);
    $("banner").hidden = true;
    body.replaceChildren(...names.map((n, i) => collectionRow(n, infos[i])));
    $("collections-empty").hidden = names.length > 0;
    const wanted = state.name || new URLSearchParams(location.hash.slice(1)).get("c");
    if (wanted && names.includes(wanted)) await selectCollection(wanted);
  } catch (err) {
    body.replaceChildren();
    showError("collections-error", err);
  }
}

function collectionRow(name, info) {
  const row = el("tr", { "data-name": name, onclick: () => selectCollection(name) }, el("td", {}, el("strong", {}, name)));
  if (info instanceof Error) {
    row.append(el("td", { colSpan: 5, className: "muted" }, info.message));
  } else {
    row.append(
      el("td", { className: "num points-count" }, info.points_count ?? "?"),
      el("td", { className: "num indexed-count" }, info.indexed_vectors_count ?? 0),
      el("td", { className: "status" }, badge(info.status)),
      el("td", {}, (info.config.index && info.config.index.type) || "hnsw"),
      el("td", {}, vectorsSummary(info.config.params.vectors)));
  }
  if (name === state.name) row.classList.add("selected");
  return row;
}

async function selectCollection(name) {
  if (name !== state.name) {
    state.name = name;
    $("results").hidden = true;
    $("search-status").textContent = "";
    showError("search-error", null);
  }
  history.replaceState(null, "", `#c=${encodeURIComponent(name)}`);
  for (const row of $("collections").tBodies[0].rows) row.classList.toggle("selected", row.dataset.name === name);
  $("collection").hidden = false;
  $("collection-name").textContent = name;
  try {
    state.info = (await api("GET", coll(name))).result;
  } catch (err) {
    $("collection-info").replaceChildren(el("dt", {}, "Error"), el("dd", { className: "error" }, err.message));
    return;
  }
  renderInfo(state.info);
  await browse(true);
}

function renderInfo(info) {
  const params = info.config.params;
  const optimizer = typeof info.optimizer_status === "object" ? ` optimizer error: ${info.optimizer_status.error}` : "";
  const index = info.config.index || { type: "hnsw" };
  const schema = Object.entries(info.payload_schema || {}).map(([k, v]) => `${k}: ${v.data_type} (${v.points} points)`);
  const rows = [
    ["Status", el("span", {}, badge(info.status), optimizer)],
    ["Points", info.points_count],
    ["Indexed vectors", info.indexed_vectors_count],
    ["Index", Object.entries(index).map(([k, v]) => `${k}=${v}`).join(", ")],
    ["Vectors", vectorsSummary(params.vectors)],
    ["Sparse vectors", params.sparse_vectors ? Object.keys(params.sparse_vectors).join(", ") || "none" : "none"],
    ["Payload indexes", schema.length ? schema.join("; ") : "none"],
  ];
  $("collection-info").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  // the dense vector spaces a query may use; an unnamed vector needs no "using"
  const vectors = params.vectors || {};
  state.spaces = "size" in vectors ? [null] : Object.keys(vectors); // null: the unnamed vector
  $("using").replaceChildren(...state.spaces.map((n, i) => el("option", { value: i },
    n === null ? "(default)" : n === "" ? '"" (default)' : n)));
}

// ---- filter editor ----

function readFilter() {
  const area = $("filter");
  const text = area.value.trim();
  let error = null, value;
  if (text) {
    try {
      value = JSON.parse(text);
      if (value === null || typeof value !== "object" || Array.isArray(value)) error = "Filter must be a JSON object";
    } catch (e) {
      error = `Filter is not valid JSON: ${e.message}`;
    }
  }
  area.classList.toggle("invalid", error !== null);
  showError("filter-error", error && new Error(error));
  return error === null ? { value } : null;
}

// ---- point browser ----

// The first page takes the editor's filter; "Next page" keeps the filter its first page had.
async function browse(first) {
  if (first) {
    const filter = readFilter();
    if (!filter || !state.name) return;
    Object.assign(state, { page: 0, next: null, filter: filter.value });
  }
  const withVectors = $("show-vectors").checked;
  const body = { limit: PAGE, with_payload: true, with_vector: withVectors };
  if (state.filter) body.filter = state.filter;
  if (!first && state.next !== null) body.offset = state.next;
  try {
    const { result } = await api("POST", coll(state.name, "/points/scroll"), body);
    showError("browse-error", null);
    state.page += 1;
    state.next = result.next_page_offset ?? null;
    $("points").classList.toggle("with-vectors", withVectors);
    $("points").tBodies[0].replaceChildren(...result.points.map((p) => el("tr", { "data-id": JSON.stringify(p.id) },
      el("td", {}, p.id), el("td", {}, json(p.payload ?? {})),
      el("td", { className: "vector-col" }, el("pre", {}, fmtVector(p.vector))),
      el("td", {}, el("button", { type: "button", onclick: () => searchSimilar(p.id) }, "Similar")))));
    $("browse-next").disabled = state.next === null;
    $("browse-status").textContent = `Page ${state.page}: ${result.points.length} points`
      + `${state.filter ? " matching the filter" : ""}${state.next === null ? " (last page)" : ""}`;
  } catch (err) {
    showError("browse-error", err);
  }
}

// ---- search ----

// "42" is a point id, "[...]" a vector, anything else a UUID id (the server checks it).
function readQuery() {
  const text = $("query").value.trim();
  if (!text) throw new Error("Enter a point id or a vector");
  if (text.startsWith("[") || text.startsWith('"')) {
    let value;
    try { value = JSON.parse(text); } catch (e) { throw new Error(`The query is not valid JSON: ${e.message}`); }
    return value;
  }
  if (/^\d+$/.test(text)) {
    const id = Number(text);
    if (!Number.isSafeInteger(id)) throw new Error("Point ids above 2^53 cannot be typed here; use the REST API");
    return id;
  }
  return text;
}

async function search() {
  const filter = readFilter();
  if (!filter || !state.name) return;
  showError("search-error", null);
  let query;
  try { query = readQuery(); } catch (err) { showError("search-error", err); return; }
  const body = { query, limit: Number($("limit").value) || 10, with_payload: true };
  if (filter.value) body.filter = filter.value;
  if (JSON.stringify(filter.value) !== JSON.stringify(state.filter)) browse(true); // the browser follows the filter
  const using = state.spaces[Number($("using").value)];
  if (using !== null && using !== undefined) body.using = using;
  const table = $("results");
  try {
    const { result, time } = await api("POST", coll(state.name, "/points/query"), body);
    table.tBodies[0].replaceChildren(...result.points.map((p) => el("tr",
      { "data-id": JSON.stringify(p.id), "data-score": String(p.score) },
      el("td", {}, p.id), el("td", { className: "num", title: String(p.score) }, +p.score.toPrecision(6)),
      el("td", {}, json(p.payload ?? {})))));
    table.hidden = false;
    $("search-status").textContent = `${result.points.length} results in ${(time * 1000).toFixed(1)} ms`;
  } catch (err) {
    table.hidden = true;
    $("search-status").textContent = "";
    showError("search-error", err);
  }
}

function searchSimilar(id) {
  $("query").value = String(id);
  search().then(() => $("search-form").scrollIntoView({ behavior: "smooth" }));
}

// ---- wiring ----

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = sessionStorage.getItem(KEY) || "";
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("api-key").value.trim();
    if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
    $("banner").hidden = true;
    loadCollections();
  });
  $("key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    $("api-key").value = "";
    loadCollections();
  });
  $("refresh").addEventListener("click", loadCollections);
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); search(); });
  $("filter").addEventListener("input", readFilter);
  $("browse-first").addEventListener("click", () => browse(true));
  $("browse-next").addEventListener("click", () => browse(false));
  $("show-vectors").addEventListener("change", () => browse(true));
  api("GET", "").then((info) => {
    $("server-version").textContent = `${info.vecdb_version ? `vecdb ${info.vecdb_version} · ` : ""}Qdrant API ${info.version}`;
  }, () => {});
  loadCollections();
});
