// The observer page: plain JS, no build step. It polls (once a second) only what is on
// screen: the expanded nodes' loaded pages, the events since the last one seen, and the
// open tab's view. Every value goes in with textContent, never as HTML.
"use strict";
const API = "/observer/api/";
const PAGE = 200;
const POLL_MS = 1000;
const st = {
  config: { live: true, actions: false }, tab: "tree", expanded: new Map(), rows: new Map(),
  selected: null, query: "", lastEvent: 0, wfStatus: "failed", wfSelected: null,
};

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const kid of kids) e.append(kid === null || kid === undefined ? "" : kid);
  return e;
}
async function get(name, params) {
  const r = await fetch(API + name + "?" + new URLSearchParams(params || {}));
  if (!r.ok) throw new Error((await r.json()).error || r.statusText);
  return r.json();
}
async function act(action, body) {
  const r = await fetch(API + "action/" + action, {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json",
               "X-Observer-Token": document.getElementById("token").value },
  });
  const data = await r.json();
  if (!r.ok) alert(action + " refused (" + r.status + "): " + data.error);
  return data;
}
function ago(t) { return t ? new Date(t * 1000).toLocaleTimeString() : ""; }

// ---------------------------------------------------------------- the tree
const CELLS = ["cls", "mode", "state", "mailbox", "handled", "failed", "restarts", "crash"];
function fill(tr, row) {
  const tds = tr.children;
  tds[1].textContent = row.cls; tds[2].textContent = row.mode;
  tds[3].textContent = row.state; tds[3].className = "state-" + row.state.replace(" ", "-");
  tds[4].textContent = row.mailbox; tds[5].textContent = row.handled;
  tds[6].textContent = row.failed; tds[7].textContent = row.restarts;
  tds[8].textContent = row.crash ? row.crash.type + ": " + row.crash.message : "";
  tds[8].title = tds[8].textContent;
  const toggle = tds[0].firstChild;
  toggle.textContent = row.children ? (st.expanded.has(row.path) ? "▾" : "▸") : "";
}
function rowFor(row, depth) {
  let tr = st.rows.get(row.path);
  if (!tr) {
    const toggle = el("span", { class: "toggle" });
    toggle.onclick = (ev) => { ev.stopPropagation(); toggleNode(row.path, depth); };
    tr = el("tr", { "data-path": row.path },
      el("td", { style: "padding-left:" + (depth * 1.2 + 0.3) + "em" }, toggle, row.name || row.path),
      ...CELLS.map((c) => el("td", { class: ["mailbox", "handled", "failed", "restarts"]
        .includes(c) ? "num" : c === "crash" ? "crash" : "" })));
    tr.onclick = () => select(row.path);
    st.rows.set(row.path, tr);
  }
  tr.dataset.depth = depth;
  fill(tr, row);
  return tr;
}
function under(path, p) { return p !== path && p.startsWith(path === "" ? "" : path + "/"); }
function removeSubtree(path) {
  for (const [p, tr] of [...st.rows]) if (under(path, p)) { tr.remove(); st.rows.delete(p); }
  for (const p of [...st.expanded.keys()]) if (under(path, p)) st.expanded.delete(p);
  document.querySelectorAll('tr.more[data-parent="' + CSS.escape(path) + '"]').forEach((m) => m.remove());
}
async function toggleNode(path, depth) {
  if (st.expanded.has(path)) {
    st.expanded.delete(path); removeSubtree(path);
    const tr = st.rows.get(path); if (tr) tr.firstChild.firstChild.textContent = "▸";
    return;
  }
  st.expanded.set(path, { depth: depth + 1, loaded: 0, total: 0 });
  await loadPage(path, 0);
}
async function loadPage(path, offset) {
  const node = st.expanded.get(path);
  if (!node) return;
  const page = await get("children", { path, offset, limit: PAGE });
  node.total = page.total;
  const body = document.getElementById("tree-body");
  let anchor = path === "" ? null : st.rows.get(path);
  if (offset > 0) anchor = lastRowUnder(path);
  let after = anchor;
  for (const row of page.rows) {
    const tr = rowFor(row, node.depth);
    if (!tr.isConnected || offset > 0) {
      if (after) after.after(tr); else body.append(tr);
    }
    after = lastRowUnder(row.path) || tr;
  }
  node.loaded = Math.max(node.loaded, offset + page.rows.length);
  document.querySelectorAll('tr.more[data-parent="' + CSS.escape(path) + '"]').forEach((m) => m.remove());
  if (node.loaded < node.total) {
    const more = el("tr", { class: "more", "data-parent": path },
      el("td", { colspan: 9, style: "padding-left:" + (node.depth * 1.2 + 1.5) + "em" },
        "show more (" + node.loaded + " of " + node.total + ")"));
    more.onclick = () => loadPage(path, node.loaded);
    if (after) after.after(more); else body.append(more);
  }
  const tr = st.rows.get(path); if (tr) tr.firstChild.firstChild.textContent = "▾";
}
function lastRowUnder(path) {
  let last = null;
  const prefix = path === "" ? "" : path + "/";
  for (const [p, tr] of st.rows) if (p.startsWith(prefix) && tr.isConnected) last = tr;
  return last;
}
async function refreshTree() {
  if (st.query) return runSearch();
  for (const [path, node] of [...st.expanded]) {
    if (!node.loaded || !st.expanded.has(path)) continue;
    const page = await get("children", { path, offset: 0, limit: Math.min(node.loaded, PAGE) });
    if (page.total !== node.total) {  // children came or went: list this node again
      removeSubtree(path); node.loaded = 0; await loadPage(path, 0); continue;
    }
    for (const row of page.rows) rowFor(row, node.depth);
  }
  if (st.selected) showMinion(st.selected);
}
async function runSearch() {
  const body = document.getElementById("tree-body");
  const res = await get("search", { q: st.query, limit: PAGE });
  document.getElementById("search-info").textContent =
    res.total + " found" + (res.total > res.rows.length ? ", first " + res.rows.length + " shown" : "");
  body.replaceChildren(...res.rows.map((r) => { st.rows.delete(r.path); return rowFor(r, 0); }));
}
function resetTree() {
  st.rows.clear(); st.expanded.clear();
  document.getElementById("tree-body").replaceChildren();
  document.getElementById("search-info").textContent = "";
  st.expanded.set("", { depth: 0, loaded: 0, total: 0 });
  return loadPage("", 0);
}
function select(path) {
  st.selected = path;
  for (const [p, tr] of st.rows) tr.classList.toggle("selected", p === path);
  showMinion(path);
}
async function showMinion(path) {
  const aside = document.getElementById("detail");
  let m;
  try { m = await get("minion", { path }); } catch (e) {
    aside.replaceChildren(el("p", {}, path + ": " + e.message)); return;
  }
  const kids = [el("h3", {}, m.path), el("p", {}, m.cls + " · " + m.mode + " · " + m.state),
    el("p", {}, "mailbox " + m.mailbox + " · handled " + m.handled + " · failed " + m.failed +
      " · restarts " + m.restarts + (m.dead_letters !== undefined ? " · dead letters " + m.dead_letters : ""))];
  if (st.config.actions) {
    kids.push(el("p", {},
      el("button", { class: "action", id: "stop-btn", onclick: () => act("stop", { path }) }, "stop"),
      el("button", { class: "action", id: "restart-btn", onclick: () => act("restart", { path }) }, "restart")));
  }
  if (m.crash) {
    kids.push(el("h4", {}, "last crash " + ago(m.crash.at) + " (phase " + m.crash.phase + ")"),
      el("p", { class: "crash-type" }, m.crash.type + ": " + m.crash.message));
    if (m.crash.traceback) kids.push(el("pre", { class: "traceback" }, m.crash.traceback));
  }
  if (m.state_shown && m.snapshot !== undefined) kids.push(el("h4", {}, "stored snapshot"), el("pre", {}, String(m.snapshot)));
  aside.replaceChildren(...kids);
}

// ---------------------------------------------------------------- events, overview
async function refreshEvents() {
  const events = await get("events", { since: st.lastEvent });
  const list = document.getElementById("events");
  for (const e of events) {
    st.lastEvent = Math.max(st.lastEvent, e.seq);
    list.prepend(el("li", { class: "ev-" + e.kind },
      ago(e.at) + " " + e.kind + " " + (e.path || "") + ": " + e.text));
  }
  while (list.children.length > 200) list.lastChild.remove();
}
async function refreshOverview() {
  const o = await get("overview");
  const p = o.pool;
  document.getElementById("stats").textContent = o.minions + " minions" +
    (p ? " · pool " + p.busy + "/" + p.workers + " busy · run queue " + p.run_queue +
      " · starvation events " + p.starvation_events : "");
  if (st.tab !== "system") return;
  const rows = (sel, items, cols) => document.querySelector(sel + " tbody").replaceChildren(
    ...items.map((it) => el("tr", {}, ...cols.map((c) => el("td", {}, it[c] === null ? "" : String(it[c]))))));
  rows("#pool", p ? Object.entries(p).map(([k, v]) => ({ k, v })) : [], ["k", "v"]);
  const parts = await get("parts");
  rows("#resources", parts.resources, ["name", "state", "calls", "errors"]);
  rows("#pipelines", parts.pipelines, ["path", "state", "events", "backpressure_seconds", "position"]);
}

// ---------------------------------------------------------------- workflows
async function refreshWorkflows() {
  const res = await get("workflows", { status: st.wfStatus, limit: PAGE });
  const bar = document.getElementById("wf-status");
  bar.replaceChildren(...["", ...Object.keys(res.counts)].map((s) =>
    el("button", { class: s === st.wfStatus ? "active" : "",
      onclick: () => { st.wfStatus = s; refreshWorkflows(); } },
      (s || "all") + (s ? " (" + res.counts[s] + ")" : ""))));
  document.getElementById("wf-body").replaceChildren(...res.rows.map((w) => {
    const buttons = el("td", {});
    if (st.config.actions && (w.status === "failed" || w.status === "aborted")) {
      buttons.append(el("button", { class: "action retry-btn",
        onclick: (ev) => { ev.stopPropagation(); act("retry", { id: w.id }).then(refreshWorkflows); } }, "retry"));
    }
    if (st.config.actions && w.status === "running") {
      buttons.append(el("button", { class: "action cancel-btn",
        onclick: (ev) => { ev.stopPropagation(); act("cancel", { id: w.id }).then(refreshWorkflows); } }, "cancel"));
    }
    if (st.config.actions) {
      buttons.append(el("button", { class: "action discard-btn",
        onclick: (ev) => { ev.stopPropagation(); act("discard", { id: w.id }).then(refreshWorkflows); } }, "discard"));
    }
    const tr = el("tr", { "data-id": w.id }, el("td", {}, w.id), el("td", {}, w.name),
      el("td", {}, w.minion), el("td", { class: "wf-status" }, w.status),
      el("td", {}, (w.step || "") + " #" + w.step_index), el("td", { class: "num" }, w.attempts),
      el("td", { class: "crash" }, w.error || ""), buttons);
    tr.onclick = () => { st.wfSelected = w.id; showWorkflow(w.id); };
    return tr;
  }));
}
async function showWorkflow(id) {
  const w = await get("workflow", { id });
  const steps = w.steps ? [el("h4", {}, "steps"), el("ol", { class: "steps", start: 0 },
    ...w.steps.map((s, i) => el("li", { class: i < w.step_index ? "done" : i === w.step_index ? "current" : "" },
      s + (i === w.step_index && w.status !== "completed" ? " ← " + w.status + ", attempts " + w.attempts : ""))))] : [];
  const fields = Object.entries(w).filter(([k]) => k !== "steps");
  document.getElementById("wf-detail").replaceChildren(el("h3", {}, w.name + " " + w.id), ...steps,
    ...fields.map(([k, v]) => el("p", {}, k + ": " + (v === null ? "" : String(v)))));
}

// ---------------------------------------------------------------- wiring
async function poll() {
  try {
    await refreshOverview();
    await refreshEvents();
    if (st.tab === "tree") await refreshTree();
    if (st.tab === "workflows") await refreshWorkflows();
    document.body.dataset.polled = String(Number(document.body.dataset.polled || 0) + 1);
  } catch (e) { document.getElementById("stats").textContent = "cannot reach the app: " + e.message; }
  setTimeout(poll, POLL_MS);
}
async function main() {
  st.config = await get("config");
  const mode = document.getElementById("mode");
  mode.textContent = st.config.live ? "live" : "offline (read-only)";
  if (!st.config.live) mode.classList.add("offline");
  document.getElementById("token-box").hidden = !st.config.actions;
  for (const b of document.querySelectorAll("nav button")) {
    b.onclick = () => {
      st.tab = b.dataset.tab;
      document.querySelectorAll("nav button").forEach((x) => x.classList.toggle("active", x === b));
      document.querySelectorAll(".tab").forEach((t) => { t.hidden = t.id !== "tab-" + st.tab; });
      refreshOverview(); if (st.tab === "workflows") refreshWorkflows();
    };
  }
  let timer = null;
  document.getElementById("search").oninput = (ev) => {
    clearTimeout(timer);
    timer = setTimeout(() => { st.query = ev.target.value.trim(); st.query ? runSearch() : resetTree(); }, 250);
  };
  await resetTree();
  document.body.dataset.ready = "1";
  poll();
}
main();
