// What a screen reader and a keyboard get from the status page, read from Chromium itself:
// the accessibility tree (Accessibility.getFullAXTree) and real key events
// (Input.dispatchKeyEvent). Each check answers a list of problems; empty is good.
"use strict";

// Roles a user operates: each needs a name a screen reader can say.
const CONTROLS = new Set(["button", "link", "textbox", "searchbox", "combobox", "checkbox", "radio",
  "menuitem", "tab", "slider", "spinbutton", "switch", "listbox"]);

const role = (n) => n.role && n.role.value;
const name = (n) => (n.name && n.name.value) || "";
const prop = (n, p) => { const f = (n.properties || []).find((x) => x.name === p); return f && f.value.value; };

async function tree(s) {
  const { nodes } = await s("Accessibility.getFullAXTree", {});
  const byId = new Map(nodes.map((n) => [n.nodeId, n]));
  const parent = new Map();
  for (const n of nodes) for (const c of n.childIds || []) parent.set(c, n.nodeId);
  return { shown: nodes.filter((n) => !n.ignored), byId, parent };
}

function descendants(t, n) {
  const out = [];
  const walk = (id) => { const c = t.byId.get(id); if (!c) return; out.push(c); (c.childIds || []).forEach(walk); };
  (n.childIds || []).forEach(walk);
  return out.filter((d) => !d.ignored);
}

// Controls named, landmarks there, headings in order, every table with column headers.
async function structure(s, { tables }) {
  const t = await tree(s);
  const problems = [];
  for (const n of t.shown) {
    if (CONTROLS.has(role(n)) && !name(n).trim()) problems.push(`a ${role(n)} has no accessible name`);
  }
  for (const r of ["banner", "navigation", "main"]) {
    if (!t.shown.some((n) => role(n) === r)) problems.push(`no ${r} landmark`);
  }
  const levels = t.shown.filter((n) => role(n) === "heading").map((n) => [prop(n, "level"), name(n)]);
  if (!levels.length || levels[0][0] !== 1) problems.push(`the first heading is not level 1: ${JSON.stringify(levels[0])}`);
  if (levels.filter(([l]) => l === 1).length !== 1) problems.push("not exactly one level-1 heading");
  levels.forEach(([l, text], i) => {
    if (i && l > levels[i - 1][0] + 1) problems.push(`heading "${text}" (level ${l}) skips a level after level ${levels[i - 1][0]}`);
  });
  const found = t.shown.filter((n) => role(n) === "table");
  if (found.length < tables) problems.push(`${found.length} tables in the tree, ${tables} expected (a table laid out as blocks loses its role)`);
  for (const table of found) {
    const heads = descendants(t, table).filter((d) => role(d) === "columnheader" && name(d).trim());
    if (!heads.length) problems.push(`a table without column headers (${name(table) || "unnamed"})`);
  }
  return { problems, headings: levels.map(([l, text]) => `${l} ${text}`) };
}

// The node saying `text` sits in a live region, so a screen reader announces it unasked.
async function announced(s, text) {
  const t = await tree(s);
  const saying = t.shown.filter((n) => name(n).includes(text));
  if (!saying.length) return [`nothing in the tree says "${text}"`];
  for (const n of saying) {
    for (let id = n.nodeId; id; id = t.parent.get(id)) {
      const live = prop(t.byId.get(id), "live");
      if (live === "polite" || live === "assertive") return [];
    }
  }
  return [`"${text}" is not in a live region`];
}

function keys(s) {
  const press = async (key, code, vk, text, modifiers = 0) => {
    await s("Input.dispatchKeyEvent", { type: "keyDown", key, code, windowsVirtualKeyCode: vk, text, modifiers });
    await s("Input.dispatchKeyEvent", { type: "keyUp", key, code, windowsVirtualKeyCode: vk, modifiers });
  };
  return {
    tab: () => press("Tab", "Tab", 9, "\t"),
    enter: () => press("Enter", "Enter", 13, "\r"),
    type: (text) => s("Input.insertText", { text }),
  };
}

// What has focus, as a person would name it, and whether it can be seen.
const FOCUSED = `(() => {
  const a = document.activeElement;
  if (!a || a === document.body) return null;
  const r = a.getBoundingClientRect();
  const by = a.getAttribute("aria-labelledby");
  const labelled = by && document.getElementById(by) ? document.getElementById(by).textContent : null;
  return { id: a.id, what: a.getAttribute("aria-label") || labelled || a.id || a.textContent.trim().slice(0, 40),
    tag: a.tagName.toLowerCase(), visible: r.width > 0 && r.height > 0 };
})()`;

// Tabs from where focus is until `done(focused)` or `max` presses; answers every stop.
async function tabUntil(s, evaluate, done, max = 60) {
  const k = keys(s);
  const stops = [];
  for (let i = 0; i < max; i++) {
    await k.tab();
    const f = await evaluate(FOCUSED);
    stops.push(f);
    if (f && done(f)) return stops;
  }
  throw new Error(`${max} Tabs did not reach the control; focus went: ${JSON.stringify(stops.map((f) => f && f.what))}`);
}

module.exports = { structure, announced, keys, tabUntil, FOCUSED };
