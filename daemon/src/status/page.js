// notifyd status page. Plain DOM, no framework: it is embedded in the binary and must work
// offline. Every value from the daemon goes in through textContent, never as markup.
"use strict";

const REFRESH_MS = 5000;
const API = "/status/api";
const TOKEN_KEY = "notifyd.ingestToken";
const $ = (id) => document.getElementById(id);

let lastOk = null;
let downSince = null;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}

function set(id, text, cls) {
  const e = $(id);
  e.textContent = text;
  e.className = cls || "";
}

// Local time, year first: unambiguous whichever locale the operator's phone is set to.
function clock(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// On a phone, rows become cards; each cell carries its column's name to show beside the value.
function labelled(tbody, rows) {
  const names = [...tbody.closest("table").querySelectorAll("thead th")].map((th) => th.textContent);
  for (const row of rows) [...row.children].forEach((td, i) => { if (names[i]) td.setAttribute("data-label", names[i]); });
  return rows;
}

function duration(s) {
  if (s === null || s === undefined) return "–";
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function bytes(n) {
  if (n === null || n === undefined) return "unknown";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function token() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (_) { return ""; }
}

function headers() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

async function fetchJson(url, options) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 4000);
  try {
    const resp = await fetch(url, { cache: "no-store", ...options, signal: ctl.signal });
    let body = null;
    try { body = await resp.json(); } catch (_) { body = null; }
    return { status: resp.status, body };
  } finally {
    clearTimeout(timer);
  }
}

function message(body, fallback) {
  const r = body && body.result;
  return r ? `${r.resultCode}: ${r.resultMessage}` : fallback;
}

// --- the summary ---------------------------------------------------------------------------

function chart(id, nowId, samples, key, label) {
  const box = $(id);
  const values = samples.map((s) => s[key]);
  const last = values.length ? values[values.length - 1] : null;
  $(nowId).textContent = last === null ? "(no samples yet)" : `(now ${last.toFixed(1)})`;
  const max = Math.max(1, ...values);
  const w = 300, h = 60;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const peak = values.length ? Math.max(...values).toFixed(1) : "0";
  svg.setAttribute("aria-label", `${label}: ${values.length} samples, peak ${peak}, now ${last === null ? "none" : last.toFixed(1)}`);
  if (values.length) {
    // One rate so far (two samples) still draws, as a level line, so the chart is never blank.
    const vs = values.length === 1 ? [values[0], values[0]] : values;
    const step = w / (vs.length - 1);
    const pts = vs.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.append(line);
  }
  box.replaceChildren(svg);
}

// `key` names the control across refreshes (see `rebuild`): Hold and Resume of one endpoint
// share it, so focus moves from one to the other when the endpoint changes state.
function actionButton(label, what, key, run) {
  return el("button", { type: "button", class: "secondary", "aria-label": `${label} ${what}`, "data-focus": key, onclick: run }, label);
}

// Every refresh rebuilds the tables. A keyboard user on one of their controls would lose focus
// to the top of the page every 5 s: it is found again by its key, or, when its row is gone (a
// redelivered dead letter), given to the table's scroll region.
function rebuild(tbody, rows) {
  const a = document.activeElement;
  const key = a && tbody.contains(a) ? a.getAttribute("data-focus") : null;
  tbody.replaceChildren(...rows);
  if (!key) return;
  const again = [...tbody.querySelectorAll("[data-focus]")].find((e) => e.getAttribute("data-focus") === key);
  (again || tbody.closest(".scroll")).focus();
}

function renderEndpoints(list) {
  const rows = list.map((e) => {
    const held = e.state === "held";
    const cls = e.state === "ok" ? "ok" : (e.state === "degraded" ? "warn" : "bad");
    return el("tr", {},
      el("td", { class: "id" }, e.endpoint),
      el("td", { class: cls }, e.state + (e.pausedUntil ? ` until ${clock(e.pausedUntil)}` : "")),
      el("td", { class: "num" }, e.concurrencyLimit),
      el("td", { class: "num" }, e.pending),
      el("td", { class: "num" }, e.inFlight),
      el("td", {}, e.lastError ? `${e.lastError} (${clock(e.lastErrorAt)})` : "–"),
      el("td", { class: "op" }, held
        ? actionButton("Resume", e.endpoint, `ep:${e.endpoint}`, () => act(`/v1/endpoints/${encodeURIComponent(e.endpoint)}/resume`, `resume ${e.endpoint}`))
        : actionButton("Hold", e.endpoint, `ep:${e.endpoint}`, () => act(`/v1/endpoints/${encodeURIComponent(e.endpoint)}/hold`, `hold ${e.endpoint}`))));
  });
  rebuild($("endpoints"), rows.length ? labelled($("endpoints"), rows) : [el("tr", {}, el("td", { colspan: 7, class: "empty" }, "No endpoint yet."))]);
}

function target(url) {
  try { return new URL(url).host; } catch (_) { return url; }
}

function renderDead(list) {
  const rows = list.map((n) => el("tr", {},
    el("td", { class: "id" }, el("a", { href: `#n=${encodeURIComponent(n.notificationId)}`, "data-focus": `n:${n.notificationId}` }, n.notificationId)),
    el("td", { class: "bad" }, n.state),
    el("td", {}, `${n.api} → ${target(n.url)}`),
    el("td", { class: "num" }, n.attempts),
    el("td", {}, n.lastResult || "–"),
    el("td", {}, clock(n.finishedAt)),
    el("td", { class: "op" }, actionButton("Redeliver", n.notificationId, `rd:${n.notificationId}`,
      () => act(`/v1/notifications/${encodeURIComponent(n.notificationId)}/redeliver`, `redeliver ${n.notificationId}`)))));
  rebuild($("dead-letters"), rows.length ? labelled($("dead-letters"), rows) : [el("tr", {}, el("td", { colspan: 7, class: "empty" }, "No dead letters."))]);
}

function render(s) {
  const h = s.health, l = s.losing;
  set("ready", h.ready ? "ready" : (h.stopping ? "stopping" : "recovering"), h.ready ? "ok" : "bad");
  set("store", h.storeReadable ? "readable" : "unreadable", h.storeReadable ? "" : "bad");
  set("version", h.version);
  set("uptime", duration(h.uptimeSeconds));
  const p99 = h.storeCommitP99Seconds;
  set("p99", p99 === null ? "no commits yet" : `${(p99 * 1000).toFixed(1)} ms`, p99 !== null && p99 > 0.25 ? "warn" : "");
  const free = h.diskFreeBytes, total = h.diskTotalBytes;
  const low = free !== null && total ? free / total < 0.1 : false;
  set("disk", free === null ? "unknown" : `${bytes(free)} of ${bytes(total)}`, low ? "bad" : "");
  set("pending", String(l.pending));
  const o = l.oldestOverdue;
  const overdueText = { overdue: () => `${duration(o.seconds)} (due ${clock(o.since)})`, none: () => "none", unknown: () => "not known yet" }[o.state];
  set("overdue", overdueText ? overdueText() : o.state, o.state === "overdue" && o.seconds > 60 ? "bad" : "");
  const capped = l.countsCapped ? "+" : "";
  set("dead", `${l.dead.lastHour}${capped} / ${l.dead.lastDay}${capped}`, l.dead.lastHour ? "bad" : "");
  set("failed", `${l.failed.lastHour}${capped} / ${l.failed.lastDay}${capped}`, l.failed.lastHour ? "bad" : "");
  chart("chart-accepted", "accepted-now", s.rates.samples, "acceptedPerSecond", "Accepted per second");
  chart("chart-delivered", "delivered-now", s.rates.samples, "deliveredPerSecond", "Delivered per second");
  renderEndpoints(s.endpoints);
  renderDead(s.deadLetters);
}

async function refresh() {
  try {
    const r = await fetchJson("/status.json");
    if (r.status !== 200 || !r.body) throw new Error(`HTTP ${r.status}`);
    render(r.body);
    lastOk = new Date();
    const was = downSince;
    downSince = null;
    $("main").classList.remove("stale");
    const line = $("line");
    line.className = "";
    line.textContent = `${was ? "Reachable again. " : ""}Updated ${lastOk.toLocaleTimeString(undefined, { hour12: false })}, every ${REFRESH_MS / 1000} s.`;
  } catch (_) {
    // A restart or a dropped tunnel: keep the last numbers on screen, dimmed, and say since when.
    if (!downSince) downSince = new Date();
    $("main").classList.add("stale");
    // The last "ready" would be a lie about now; the other numbers are labelled as old.
    set("ready", "unreachable", "bad");
    const line = $("line");
    line.className = "down";
    line.textContent = `notifyd unreachable since ${downSince.toLocaleTimeString(undefined, { hour12: false })}` +
      (lastOk ? `; showing data from ${lastOk.toLocaleTimeString(undefined, { hour12: false })}` : "") + ". Retrying.";
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

// --- operator actions ----------------------------------------------------------------------

async function act(path, what) {
  const line = $("action-line");
  if (!token()) {
    line.textContent = `Not done (${what}): enter the ingest token first.`;
    return;
  }
  line.textContent = `Working: ${what}…`;
  try {
    const r = await fetchJson(API + path, { method: "POST", headers: headers() });
    if (r.status === 200) line.textContent = `Done: ${what}. ${message(r.body, "")}`;
    else if (r.status === 401) line.textContent = `Refused (${what}): the token is missing or wrong.`;
    else line.textContent = `Not done (${what}): HTTP ${r.status}, ${message(r.body, "no answer")}`;
  } catch (_) {
    line.textContent = `Not done (${what}): notifyd did not answer.`;
  }
  refresh0();
}

function operatorMode() {
  document.body.classList.toggle("operator", !!token());
}

// --- search --------------------------------------------------------------------------------

function fact(dl, name, value) {
  dl.append(el("div", {}, el("dt", {}, name), el("dd", {}, value === null || value === undefined ? "–" : String(value))));
}

async function openNotification(id) {
  const line = $("search-line");
  const r = await fetchJson(`${API}/v1/notifications/${encodeURIComponent(id)}`, { headers: headers() });
  if (r.status === 401) { line.textContent = "Looking notifications up needs the ingest token (Operator actions, below)."; return false; }
  if (r.status !== 200) { line.textContent = `Notification ${id}: ${message(r.body, `HTTP ${r.status}`)}`; return false; }
  const n = r.body;
  $("detail").hidden = false;
  $("detail-title").textContent = `Notification ${n.notificationId}`;
  const dl = $("detail-facts");
  dl.replaceChildren();
  fact(dl, "State", n.state);
  fact(dl, "API", n.api);
  fact(dl, "Target", n.url);
  fact(dl, "Profile", n.profile);
  fact(dl, "Attempts", n.attempts);
  fact(dl, "Last result", n.lastResult);
  fact(dl, "Accepted", clock(n.acceptedAt));
  fact(dl, "Next attempt", clock(n.nextAttemptAt));
  fact(dl, "Finished", clock(n.finishedAt));
  if (n.waitingFor) fact(dl, "Waiting behind", n.waitingFor);
  const log = n.attemptLog;
  const rows = Array.isArray(log) ? log.map((a) => el("tr", {},
    el("td", {}, clock(a.at)),
    el("td", { class: "num" }, a.durationMs === undefined ? "–" : `${a.durationMs} ms`),
    el("td", { class: "num" }, a.httpStatus === undefined || a.httpStatus === null ? "–" : a.httpStatus),
    el("td", {}, a.result || "–"),
    el("td", {}, a.signature || "–"))) : [];
  $("attempts").replaceChildren(...(rows.length ? labelled($("attempts"), rows) : [el("tr", {}, el("td", { colspan: 5, class: "empty" }, "No attempt yet."))]));
  $("detail-title").focus();
  return true;
}

async function search(by, q) {
  const line = $("search-line");
  const list = $("search-results");
  list.replaceChildren();
  $("detail").hidden = true;
  line.textContent = "Searching…";
  try {
    if (by === "id") {
      if (await openNotification(q)) line.textContent = `Found notification ${q}.`;
      return;
    }
    const r = await fetchJson(`${API}/v1/notifications?${by}=${encodeURIComponent(q)}&limit=50`, { headers: headers() });
    if (r.status === 401) { line.textContent = "Searching needs the ingest token (Operator actions, below)."; return; }
    if (r.status !== 200 || !r.body || !Array.isArray(r.body.notifications)) { line.textContent = `Search failed: ${message(r.body, `HTTP ${r.status}`)}`; return; }
    const found = r.body.notifications;
    line.textContent = found.length ? `${found.length} notification(s) for ${by} ${q}.` : `Nothing found for ${by} ${q}.`;
    for (const n of found) {
      list.append(el("li", {}, el("button", { type: "button", class: "secondary", onclick: () => openNotification(n.notificationId) },
        `${n.api} ${n.state}, ${n.attempts} attempt(s), accepted ${clock(n.acceptedAt)}`), " ", el("span", { class: "id" }, n.notificationId)));
    }
    if (found.length === 1) await openNotification(found[0].notificationId);
  } catch (_) {
    line.textContent = "Search failed: notifyd did not answer.";
  }
}

function fromHash() {
  const m = /^#n=(.+)$/.exec(location.hash);
  if (m) {
    const id = decodeURIComponent(m[1]);
    $("search-by").value = "id";
    $("search-q").value = id;
    search("id", id);
  }
}

let refreshNow = null;
function refresh0() { if (refreshNow) refreshNow(); }

document.addEventListener("DOMContentLoaded", () => {
  $("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = $("search-q").value.trim();
    if (q) search($("search-by").value, q);
  });
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* private mode */ }
    $("token").value = "";
    operatorMode();
    $("action-line").textContent = t ? "Token kept for this tab: actions are shown." : "No token: read-only.";
  });
  $("forget").addEventListener("click", () => {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* nothing kept */ }
    operatorMode();
    $("action-line").textContent = "Token forgotten: read-only.";
  });
  window.addEventListener("hashchange", fromHash);
  operatorMode();
  refreshNow = async () => {
    try { const r = await fetchJson("/status.json"); if (r.status === 200 && r.body) render(r.body); } catch (_) { /* the loop reports it */ }
  };
  refresh();
  fromHash();
});
