// Drives the status page in headless Chromium over the DevTools protocol on a pipe
// (--remote-debugging-pipe: fds 3 and 4), so it needs nothing but node and chromium: no npm
// package, no network. Run by daemon/tests/status_page.rs, which reads the last stdout line.
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const path = require("path");

const a11y = require("./a11y.js");

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const BASE = env("BASE"), TOKEN = env("TOKEN"), DEAD_ID = env("DEAD_ID"), PAYMENT_ID = env("PAYMENT_ID");
const PAYMENT_REQUEST_ID = env("PAYMENT_REQUEST_ID"), ENDPOINT = env("ENDPOINT");
// Values the test sent or notifyd used that the page must never show (a signature, the
// private key, a body field, the token).
const SECRETS = JSON.parse(env("SECRETS"));
const OUT = env("OUT");

const browser = spawn(env("CHROMIUM"), [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
  "--disable-extensions", "--disable-background-networking", "--remote-debugging-pipe",
  `--user-data-dir=${env("PROFILE")}`, "about:blank",
], { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
let stderr = "";
browser.stdio[2].on("data", (d) => { stderr += d; });
const toBrowser = browser.stdio[3], fromBrowser = browser.stdio[4];

let nextId = 1;
const waiting = new Map();
const listeners = [];
let buffered = Buffer.alloc(0);
fromBrowser.on("data", (chunk) => {
  buffered = Buffer.concat([buffered, chunk]);
  let end;
  while ((end = buffered.indexOf(0)) >= 0) {
    const msg = JSON.parse(buffered.subarray(0, end).toString("utf8"));
    buffered = buffered.subarray(end + 1);
    if (msg.id && waiting.has(msg.id)) {
      const { resolve, reject } = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (msg.error) reject(new Error(JSON.stringify(msg.error))); else resolve(msg.result);
    } else if (msg.method) {
      for (const l of listeners) l(msg);
    }
  }
});

function send(method, params, sessionId) {
  const id = nextId++;
  const msg = { id, method, params: params || {} };
  if (sessionId) msg.sessionId = sessionId;
  toBrowser.write(JSON.stringify(msg) + "\0");
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  const s = (m, p) => send(m, p, sessionId);
  const consoleErrors = [];
  const networkErrors = [];
  listeners.push((msg) => {
    if (msg.sessionId !== sessionId) return;
    if (msg.method === "Runtime.consoleAPICalled" && (msg.params.type === "error" || msg.params.type === "assert")) {
      consoleErrors.push(msg.params.args.map((a) => a.value ?? a.description).join(" "));
    } else if (msg.method === "Runtime.exceptionThrown") {
      consoleErrors.push(msg.params.exceptionDetails.exception?.description || msg.params.exceptionDetails.text);
    } else if (msg.method === "Log.entryAdded" && msg.params.entry.level === "error" && msg.params.entry.source === "network") {
      // Chromium logs every non-2xx answer; the test expects some (a refusal, the missing search).
      networkErrors.push(`${msg.params.entry.text} ${msg.params.entry.url || ""}`);
    } else if (msg.method === "Log.entryAdded" && msg.params.entry.level === "error") {
      consoleErrors.push(`${msg.params.entry.source}: ${msg.params.entry.text} ${msg.params.entry.url || ""}`);
    }
  });
  await s("Runtime.enable");
  await s("Log.enable");
  await s("Page.enable");

  const evaluate = async (expr) => {
    const r = await s("Runtime.evaluate", { expression: expr, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`${expr}: ${r.exceptionDetails.exception?.description}`);
    return r.result.value;
  };
  const until = async (what, expr, ms = 15000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      // Before the page is there (about:blank, a reload), the expression may throw: not yet.
      const v = await evaluate(expr).catch(() => false);
      if (v) return v;
      if (Date.now() > deadline) {
        const text = await evaluate("document.body.innerText");
        throw new Error(`timed out waiting for ${what}; page text:\n${text}`);
      }
      await sleep(100);
    }
  };
  const text = (id) => `(document.getElementById(${JSON.stringify(id)}).textContent || "")`;
  const shot = async (name) => {
    const { data } = await s("Page.captureScreenshot", { format: "png", captureBeyondViewport: false });
    fs.writeFileSync(path.join(OUT, name), Buffer.from(data, "base64"));
  };
  // The whole page, for reviewing the layout below the fold.
  const fullShot = async (name) => {
    const { cssContentSize: c } = await s("Page.getLayoutMetrics");
    const { data } = await s("Page.captureScreenshot", { format: "png", captureBeyondViewport: true,
      clip: { x: 0, y: 0, width: c.width, height: Math.min(c.height, 4000), scale: 1 } });
    fs.writeFileSync(path.join(OUT, name), Buffer.from(data, "base64"));
  };
  const fill = (id, value) => evaluate(`(() => { const e = document.getElementById(${JSON.stringify(id)}); e.focus(); e.value = ${JSON.stringify(value)}; return true; })()`);
  const submit = (id) => evaluate(`(document.getElementById(${JSON.stringify(id)}).requestSubmit(), true)`);
  const clickButton = (label) => evaluate(`(() => {
    const b = [...document.querySelectorAll("td.op button")].find((b) => b.getAttribute("aria-label") === ${JSON.stringify(label)});
    if (!b) return false; b.click(); return true; })()`);
  const k = a11y.keys(s);
  const focused = () => evaluate(a11y.FOCUSED);
  // A fresh load puts the keyboard back at the top of the page.
  const reload = async () => {
    await s("Page.reload", {});
    await until("the page again", `${text("line")}.startsWith("Updated")`);
  };
  const leaks = [];
  const noSecrets = async (where) => {
    const page = await evaluate("document.documentElement.outerHTML + '\\n' + document.body.innerText");
    const { nodes } = await s("Accessibility.getFullAXTree", {});
    const said = JSON.stringify(nodes.map((n) => [n.name && n.name.value, n.value && n.value.value]));
    for (const x of SECRETS) if (page.includes(x) || said.includes(x)) leaks.push(`${where}: ${x.slice(0, 16)}…`);
  };
  const a11yProblems = {};

  // Phone first: the 3 a.m. case, over an ssh tunnel.
  await s("Emulation.setDeviceMetricsOverride", { width: 390, height: 844, deviceScaleFactor: 1, mobile: true });
  await s("Page.navigate", { url: `${BASE}/` });
  await until("the dead letter", `${text("dead-letters")}.includes(${JSON.stringify(DEAD_ID)})`);
  await until("the status line", `${text("line")}.startsWith("Updated")`);
  // Rates need two samples, 5 s apart: wait for the charts so the screenshot shows them.
  await until("the charts", `${text("accepted-now")}.startsWith("(now")`, 15000);
  await shot("phone.png");
  a11yProblems.phone = (await a11y.structure(s, { tables: 2 })).problems;

  // Read-only without a token: no action is offered, and a search says what it needs.
  const readOnly = await evaluate(`[...document.querySelectorAll("td.op button")].length >= 2 &&
    [...document.querySelectorAll("td.op button")].every((b) => b.getClientRects().length === 0)`);
  await fill("search-q", PAYMENT_ID);
  await submit("search");
  await until("the search refusal", `${text("search-line")}.startsWith("Searching needs the ingest token")`);

  // With the wrong token the actions are shown, and refused by notifyd.
  await fill("token", "not-the-token");
  await submit("token-form");
  await until("the redeliver button", "getComputedStyle(document.querySelector('#dead-letters td.op')).display !== 'none'");
  if (!(await clickButton(`Redeliver ${DEAD_ID}`))) throw new Error("no redeliver button for the dead letter");
  await until("the redeliver refusal", `${text("action-line")}.startsWith("Refused (redeliver")`);
  if (!(await clickButton(`Hold ${ENDPOINT}`))) throw new Error("no hold button for the endpoint");
  await until("the hold refusal", `${text("action-line")}.startsWith("Refused (hold")`);
  const refusedWithoutToken = true;

  // From here on by keyboard. Tab from the top to the token box, noting every stop.
  await reload();
  const tabOrder = await a11y.tabUntil(s, evaluate, (f) => f.id === "token");
  await k.type(TOKEN);
  await k.enter();
  await until("the token taken", `${text("action-line")}.startsWith("Token kept")`);
  await noSecrets("after the token");

  // Search by paymentId: type it, Enter; the one match opens with its attempt log.
  await reload();
  await a11y.tabUntil(s, evaluate, (f) => f.id === "search-q");
  await k.type(PAYMENT_ID);
  await k.enter();
  const opened = `!document.getElementById("detail").hidden && ${text("detail-title")}.includes(${JSON.stringify(DEAD_ID)})`;
  await until("the notification found by paymentId", `${text("search-line")}.includes("for paymentId") && ${opened}`);
  const attempts = await evaluate(`[...document.querySelectorAll("#attempts tr")].map((tr) => [...tr.children].map((td) => td.textContent))`);
  const detailFocused = (await focused())?.id === "detail-title";
  a11yProblems.detail = (await a11y.structure(s, { tables: 3 })).problems;
  await noSecrets("the notification's detail");
  await shot("phone-detail.png");
  await fullShot("phone-full.png");

  // And by paymentRequestId.
  await evaluate(`(document.getElementById("search-by").value = "paymentRequestId", document.getElementById("search-q").value = "", document.getElementById("search-q").focus(), true)`);
  await k.type(PAYMENT_REQUEST_ID);
  await k.enter();
  await until("the notification found by paymentRequestId", `${text("search-line")}.includes("for paymentRequestId") && ${opened}`);
  const foundBy = ["paymentId", "paymentRequestId"];

  // Hold, then resume, the endpoint with Enter; focus follows Hold to Resume across the redraw.
  await reload();
  await a11y.tabUntil(s, evaluate, (f) => f.what === `Hold ${ENDPOINT}`);
  await k.enter();
  await until("the hold", `${text("action-line")}.startsWith("Done: hold")`);
  await until("focus on Resume", `(${a11y.FOCUSED})?.what === ${JSON.stringify(`Resume ${ENDPOINT}`)}`);
  const held = await evaluate(`${text("endpoints")}.includes("held")`);
  await k.enter();
  await until("the resume", `${text("action-line")}.startsWith("Done: resume")`);
  await until("focus back on Hold", `(${a11y.FOCUSED})?.what === ${JSON.stringify(`Hold ${ENDPOINT}`)}`);

  // Redeliver with Enter, after a refresh has redrawn the table under the focused button.
  await a11y.tabUntil(s, evaluate, (f) => f.what === `Redeliver ${DEAD_ID}`);
  const before = await evaluate(text("line"));
  await until("a refresh", `${text("line")} !== ${JSON.stringify(before)}`, 12000);
  const focusKept = (await focused())?.what === `Redeliver ${DEAD_ID}`;
  await k.enter();
  await until("the redelivery", `${text("action-line")}.startsWith("Done: redeliver")`);
  const redelivered = true;
  const focusAfterRedeliver = await focused();

  await s("Emulation.setDeviceMetricsOverride", { width: 1280, height: 800, deviceScaleFactor: 1, mobile: false });
  await reload();
  await until("the dead letter again", `${text("dead-letters")}.includes(${JSON.stringify(DEAD_ID)})`);
  await sleep(300);
  await shot("desktop.png");
  a11yProblems.desktop = (await a11y.structure(s, { tables: 2 })).problems;

  // notifyd restarts (the test stops it for longer than one refresh): the page must say so,
  // in a live region, keep the last numbers, and come back without a reload.
  fs.writeFileSync(path.join(OUT, "restart-now"), "");
  await until("the outage to show", `${text("line")}.startsWith("notifyd unreachable")`, 30000);
  const sawUnreachable = true;
  a11yProblems.outage = await a11y.announced(s, "notifyd unreachable");
  await shot("unreachable.png");
  await until("the recovery", `${text("line")}.startsWith("Reachable again")`, 30000);
  const recovered = await evaluate(`${text("dead-letters")}.includes(${JSON.stringify(DEAD_ID)})`);
  await noSecrets("the end");

  console.log(JSON.stringify({ consoleErrors, networkErrors, readOnly, refusedWithoutToken, tabOrder, detailFocused,
    attempts, foundBy, held, focusKept, focusAfterRedeliver, redelivered, sawUnreachable, recovered, leaks, a11yProblems }));
}

main().then(() => { browser.kill(); process.exit(0); }, (e) => {
  console.error(e.stack || String(e));
  console.error("chromium stderr:\n" + stderr.slice(-4000));
  browser.kill();
  process.exit(1);
});
