// meshmon maintainer view: outages, incidents, weak points, silences, the alert log.
// Plain JS, no framework. The session cookie (HttpOnly) authorises the API calls, so this
// script never sees the token. Everything from the network goes in through textContent.
// Long lists are capped (with "show all") or paged, so the page stays short on a phone.
"use strict";

(function () {
  const REFRESH_MS = 10000;
  const LOG_LIMIT = 200;
  const LOG_PAGE = 15;
  const CUT_SHOWN = 8;
  const CUT_SHOWN_PHONE = 4;
  const OUTAGES_SHOWN = 5;
  const INCIDENTS_SHOWN = 5;
  const WEAK_SHOWN = 10;
  const FADING_SHOWN = 20;
  const SILENCES_SHOWN = 6;
  const ENDED_SHOWN = 10;
  const ENDED_WINDOW_S = 7 * 86400;
  const LINKED_NODES = 3;
  const SEVERITY_RANK = { critical: 2, warning: 1, info: 0 };
  const DURATIONS = [["30 min", 1800], ["1 h", 3600], ["2 h", 7200], ["4 h", 14400],
    ["8 h", 28800], ["1 day", 86400], ["3 days", 259200], ["1 week", 604800]];
  const DEFAULT_DURATION_S = 7200;

  let serverOffsetMs = 0; // server clock − browser clock, from the Date header
  let timer = null;
  let signedOut = false;
  let loading = null;
  // what the last load brought, so a section can be drawn again without a request
  const latest = { outages: [], open: [], silences: [] };
  const showAll = { outages: false, incidents: false, weak: false, fading: false,
    silences: false, ended: false };
  let logPage = 0;
  let quick = null; // the open "silence this" form: {key, form}; holds the cards still

  class AuthError extends Error {}

  // ------------------------------------------------------------------ small helpers
  function $(id) { return document.getElementById(id); }

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === "text") node.textContent = String(value);
        else if (key === "className") node.className = value;
        else if (key === "dataset") Object.assign(node.dataset, value);
        else if (key === "onclick") node.addEventListener("click", value);
        else node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function nowMs() { return Date.now() + serverOffsetMs; }

  function pad(n) { return String(n).padStart(2, "0"); }

  function fmtTime(ts) {
    if (ts === null || ts === undefined) return "—";
    const d = new Date(ts * 1000);
    const today = new Date(nowMs());
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    if (d.toDateString() === today.toDateString()) return time;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
  }

  function timeEl(ts) {
    if (ts === null || ts === undefined) return el("span", { text: "—" });
    const iso = new Date(ts * 1000).toISOString();
    return el("time", { datetime: iso, title: iso.replace(".000Z", "Z"), text: fmtTime(ts) });
  }

  function fmtDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${pad(s % 60)} s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${pad(m % 60)} min`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  function since(ts) {
    return fmtDuration(nowMs() / 1000 - ts);
  }

  function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

  function linkText(link) {
    const kind = link.kind ? ` (${link.kind})` : "";
    return `${link.a} — ${link.b}${kind}`;
  }

  function causeText(cause) {
    if (!cause) return "—";
    const parts = (cause.nodes || []).slice();
    for (const link of cause.links || []) parts.push(`link ${linkText(link)}`);
    return parts.length ? parts.join(", ") : "—";
  }

  // every node an incident names as its cause: cause nodes, then both ends of cause links
  function causeNodes(cause) {
    const seen = new Set((cause && cause.nodes) || []);
    for (const link of (cause && cause.links) || []) { seen.add(link.a); seen.add(link.b); }
    return [...seen];
  }

  function badge(value, kind) {
    return el("span", { className: `badge ${kind}-${value}`, text: value });
  }

  const narrow = window.matchMedia("(max-width: 720px)");

  function nodeList(nodes, total) {
    const shown = nodes.slice(0, narrow.matches ? CUT_SHOWN_PHONE : CUT_SHOWN);
    const list = el("span", { className: "nodes" });
    for (const n of shown) list.append(el("span", { className: "chip", text: n }));
    const rest = nodes.slice(shown.length);
    const more = (total || nodes.length) - shown.length;
    if (more > 0) {
      // the API lists at most 200 nodes per entry; the count is exact
      const label = total > nodes.length ? `+${more} more (${rest.length} listed)` : `+${more} more`;
      const details = el("details", { className: "more" }, el("summary", { text: label }));
      for (const n of rest) details.append(el("span", { className: "chip", text: n }));
      list.append(details);
    }
    return list;
  }

  // Map · Installer · History for one node (the map opens it from the URL's #node=)
  function gotoLinks(node, named) {
    const id = encodeURIComponent(node);
    return el("span", { className: "goto", dataset: { node } },
      named ? el("span", { className: "goto-node", text: `${node}:` }) : null,
      el("a", { href: `/#node=${id}`, text: "Map" }),
      el("a", { href: `/install/${id}`, text: "Installer" }),
      el("a", { href: `/node/${id}`, text: "History" }));
  }

  function empty(text) { return el("p", { className: "empty", text }); }

  function problem(err) {
    return el("p", { className: "error", role: "alert", text: `Could not load: ${err.message}` });
  }

  // "Show all N" / "Show fewer" under a capped list; redraws with `redraw`
  function moreButton(key, total, cap, noun, redraw) {
    if (total <= cap) return null;
    const all = showAll[key];
    return el("button", {
      type: "button", className: "show-all", dataset: { list: key },
      "aria-expanded": all ? "true" : "false",
      text: all ? `Show the first ${cap} only` : `Show all ${total} ${noun}`,
      onclick: () => { showAll[key] = !all; redraw(); },
    });
  }

  function capped(key, items, cap) {
    return showAll[key] ? items : items.slice(0, cap);
  }

  // A table that turns into labelled cards on a narrow screen (labels from data-label).
  function table(columns, rows, className) {
    const head = el("tr", null, ...columns.map((c) => el("th", { scope: "col", text: c })));
    const body = el("tbody");
    for (const row of rows) {
      const tr = el("tr", row.attrs || null);
      row.cells.forEach((cell, i) => {
        tr.append(el("td", { "data-label": columns[i] }, cell));
      });
      body.append(tr);
    }
    return el("table", { className: `grid ${className || ""}`.trim() }, el("thead", null, head), body);
  }

  function replace(id, ...nodes) {
    $(id).replaceChildren(...nodes.filter((n) => n !== null && n !== undefined && n !== false));
  }

  function count(id, n) {
    $(id).textContent = n === null ? "" : `(${n})`;
  }

  async function api(path, options) {
    const response = await fetch(path, Object.assign({
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    }, options || {}));
    const date = response.headers.get("Date");
    if (date) {
      const server = Date.parse(date);
      // the header has whole seconds: only a real clock difference counts
      if (!Number.isNaN(server)) {
        const offset = server - Date.now();
        serverOffsetMs = Math.abs(offset) > 2000 ? offset : 0;
      }
    }
    if (response.status === 401) throw new AuthError("signed out");
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      const reason = body && body.error ? body.error : `HTTP ${response.status}`;
      throw new Error(reason);
    }
    return body;
  }

  // ------------------------------------------------------------------ silences ↔ incidents
  // fnmatch's glob, as the collector matches a silence: * ? [abc] [!abc]
  function globRegExp(glob) {
    let out = "";
    for (let i = 0; i < glob.length; i += 1) {
      const c = glob[i];
      if (c === "*") out += ".*";
      else if (c === "?") out += ".";
      else if (c === "[") {
        let j = i + 1;
        if (glob[j] === "!") j += 1;
        if (glob[j] === "]") j += 1;
        while (j < glob.length && glob[j] !== "]") j += 1;
        if (j >= glob.length) { out += "\\["; continue; }
        let body = glob.slice(i + 1, j).replace(/\\/g, "\\\\");
        if (body[0] === "!") body = "^" + body.slice(1);
        else if (body[0] === "^") body = "\\" + body;
        out += `[${body}]`;
        i = j;
      } else out += c.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
    }
    return new RegExp(`^${out}$`, "s");
  }

  function activeSilence(s, now) {
    return !s.ended_early && s.starts_at <= now && now < s.ends_at;
  }

  // the active silences that hold this incident's alerts (tag silences: the page does not
  // know the nodes' tags, so only node patterns are matched here)
  function silencesOf(incident) {
    const now = nowMs() / 1000;
    const nodes = causeNodes(incident.cause);
    return latest.silences.filter((s) => activeSilence(s, now) && !s.tag &&
      (!s.node || nodes.some((n) => globRegExp(s.node).test(n))));
  }

  // ------------------------------------------------------------------ incident cards
  function whyLine(incident) {
    if (!incident.why) return null;
    const severity = incident.severity.charAt(0).toUpperCase() + incident.severity.slice(1);
    return el("p", { className: "why" }, el("strong", { text: `${severity}: ` }), incident.why);
  }

  function silencedLine(incident) {
    const held = silencesOf(incident);
    if (!held.length) return null;
    const s = held.reduce((a, b) => (b.ends_at > a.ends_at ? b : a));
    return el("p", { className: "silenced" },
      el("strong", { text: "Silenced" }), ` until `, timeEl(s.ends_at),
      s.created_by ? ` by ${s.created_by}` : "", s.reason ? ` — ${s.reason}` : "",
      held.length > 1 ? ` (+${held.length - 1} more)` : "");
  }

  function actions(incident) {
    const nodes = causeNodes(incident.cause);
    const bar = el("div", { className: "actions" });
    bar.append(el("button", {
      type: "button", className: "silence-this",
      "aria-expanded": quick && quick.key === incident.id ? "true" : "false",
      text: "Silence this", onclick: () => openQuick(incident),
    }));
    if (incident.kind === "bridge_silent") {
      // its cause is a bridge, no node: no map, installer or history of its own
      bar.append(el("a", { href: "#bridges-h", text: "Bridges" }));
      return bar;
    }
    const many = nodes.length > 1;
    for (const node of nodes.slice(0, LINKED_NODES)) bar.append(gotoLinks(node, many));
    if (nodes.length > LINKED_NODES) {
      bar.append(el("span", { className: "muted", text: `+${nodes.length - LINKED_NODES} more` }));
    }
    return bar;
  }

  function affectedText(kind, n) {
    if (kind === "outage") return `${plural(n, "node")} cut off`;
    // a silent bridge's devices are not down: nothing is heard of them
    if (kind === "bridge_silent") return `${plural(n, "device")} unmonitored`;
    return `${plural(n, "node")} would be cut off`;
  }

  function incidentCard(o) {
    const outage = o.kind === "outage";
    const affected = o.affected || [];
    const n = o.affected_count ?? affected.length;
    const card = el("article", {
      className: `card ${outage ? "outage" : "incident"} sev-${o.severity}`,
      id: o.id, dataset: { kind: o.kind, id: o.id },
    },
    el("header", null,
      badge(o.severity, "sev"),
      outage ? null : el("span", { className: "kind", text: o.kind.replace("_", " ") }),
      el("strong", { className: "cause", text: causeText(o.cause) }),
      el("span", { className: "since" }, "since ", timeEl(o.started_at_ts),
        el("span", { className: "for", text: ` · for ${since(o.started_at_ts)}` }))),
    whyLine(o),
    // the summary says the same as the line above; without one it is all there is
    o.why ? null : el("p", { className: "summary", text: o.summary }),
    // "0 nodes cut off" says nothing the line above does not
    n ? el("div", { className: "affected" },
      el("span", { className: "count", text: affectedText(o.kind, n) }),
      nodeList(affected, n)) : null,
    silencedLine(o),
    actions(o));
    if (quick && quick.key === o.id) card.append(quick.form);
    return card;
  }

  function byImpact(a, b) {
    return ((b.affected_count || 0) - (a.affected_count || 0)) ||
      ((SEVERITY_RANK[b.severity] || 0) - (SEVERITY_RANK[a.severity] || 0)) ||
      (a.started_at_ts - b.started_at_ts);
  }

  function renderOutages() {
    const outages = latest.outages.slice().sort(byImpact);
    count("n-outages", outages.length);
    if (!outages.length) {
      replace("outages", empty("No outages: every node reaches a gateway."));
      return;
    }
    const critical = outages.filter((o) => o.severity === "critical").length;
    const cut = outages.reduce((sum, o) => sum + (o.affected_count || 0), 0);
    replace("outages",
      el("p", { className: "tally" },
        `${plural(outages.length, "outage")}, ${critical} critical; ${plural(cut, "node")} cut off in all.`),
      ...capped("outages", outages, OUTAGES_SHOWN).map(incidentCard),
      moreButton("outages", outages.length, OUTAGES_SHOWN, "outages", renderOutages));
  }

  function renderIncidents() {
    // outages have their own section above
    const open = latest.open.filter((i) => i.kind !== "outage").sort((a, b) =>
      ((SEVERITY_RANK[b.severity] || 0) - (SEVERITY_RANK[a.severity] || 0)) ||
      (b.started_at_ts - a.started_at_ts));
    count("n-incidents", open.length);
    if (!open.length) {
      replace("incidents", empty("Nothing else open."));
      return;
    }
    const kinds = {};
    for (const i of open) kinds[i.kind] = (kinds[i.kind] || 0) + 1;
    const tally = Object.entries(kinds).map(([k, n]) => `${n} ${k.replace("_", " ")}`).join(", ");
    replace("incidents",
      el("p", { className: "tally", text: `${plural(open.length, "incident")}: ${tally}.` }),
      ...capped("incidents", open, INCIDENTS_SHOWN).map(incidentCard),
      moreButton("incidents", open.length, INCIDENTS_SHOWN, "incidents", renderIncidents));
  }

  function renderCards() {
    renderOutages();
    renderIncidents();
  }

  // ------------------------------------------------------------------ "silence this"
  function durationSelect() {
    const select = el("select", { name: "duration" });
    for (const [label, seconds] of DURATIONS) {
      select.append(el("option", { value: seconds, text: label, selected: seconds === DEFAULT_DURATION_S }));
    }
    return select;
  }

  function quickForm(incident) {
    const nodes = causeNodes(incident.cause);
    const msg = el("p", { className: "form-msg", role: "status" });
    const form = el("form", { className: "quick-silence", autocomplete: "off", dataset: { for: incident.id } },
      el("label", { className: "wide" }, "Nodes",
        el("input", { name: "nodes", value: nodes.join(" "), maxlength: 2000,
          autocapitalize: "off", spellcheck: "false" })),
      el("label", null, "For", durationSelect()),
      el("label", null, "By", el("input", { name: "by", value: $("silence-by").value,
        maxlength: 60, placeholder: "your name", autocomplete: "name", spellcheck: "false" })),
      el("label", { className: "wide" }, "Reason",
        el("input", { name: "reason", maxlength: 500, placeholder: "antenna swap" })),
      el("div", { className: "buttons" },
        el("button", { type: "submit", text: "Silence" }),
        el("button", { type: "button", className: "cancel", text: "Cancel", onclick: closeQuick })),
      msg);
    form.addEventListener("submit", (ev) => submitQuick(ev, incident, msg));
    return form;
  }

  function openQuick(incident) {
    if (quick && quick.key === incident.id) { closeQuick(); return; }
    quick = { key: incident.id, form: quickForm(incident) };
    renderCards();
    quick.form.elements.reason.focus();
  }

  function closeQuick() {
    quick = null;
    renderCards();
  }

  async function submitQuick(event, incident, msg) {
    event.preventDefault();
    const form = event.currentTarget;
    const nodes = form.elements.nodes.value.split(/[\s,]+/).filter(Boolean);
    const by = form.elements.by.value.trim();
    const reason = form.elements.reason.value.trim();
    const duration = Number(form.elements.duration.value);
    if (!nodes.length) { tell(msg, "Give at least one node (or a glob such as bb-*).", true); return; }
    $("silence-by").value = by; // the name stays for the next silence on this page
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const made = [];
    try {
      for (const node of nodes) {
        made.push(await api("/api/v1/silences", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ node, duration_s: duration, reason, created_by: by || "admin page" }),
        }));
      }
    } catch (err) {
      if (err instanceof AuthError) { showSignedOut(); return; }
      const done = made.length ? ` (${made.map((s) => s.node).join(", ")} silenced)` : "";
      tell(msg, `Not saved: ${err.message}${done}`, true);
      button.disabled = false;
      if (made.length) await refreshSilences();
      return;
    }
    quick = null;
    say(`Silenced ${made.map((s) => s.node).join(", ")} until ${fmtTime(made[0].ends_at)}.`, false);
    await refreshSilences();
  }

  // ------------------------------------------------------------------ weak points
  // Failures that would cut off the same nodes are one group: the cut-off sets of one
  // network are nested or disjoint, so equal size and equal listed ids mean equal sets.
  function weakGroups(data) {
    const groups = new Map();
    const add = (kind, name, cut, n) => {
      const key = `${n}|${cut.join(",")}`;
      let group = groups.get(key);
      if (!group) {
        group = { count: n, cut, items: [] };
        groups.set(key, group);
      }
      group.items.push({ kind, name });
    };
    for (const n of data.nodes || []) add("node", n.node, n.cut_off || [], n.cut_off_count);
    for (const l of data.links || []) add("link", `${l.a} — ${l.b}`, l.cut_off || [], l.cut_off_count);
    const list = [...groups.values()];
    for (const g of list) {
      g.items.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === "node" ? -1 : 1));
    }
    return list.sort((a, b) => (b.count - a.count) || a.items[0].name.localeCompare(b.items[0].name));
  }

  function weakItem(item) {
    const name = item.kind === "node"
      ? el("a", { href: `/#node=${encodeURIComponent(item.name)}`, text: item.name })
      : el("strong", { text: item.name });
    return el("span", { className: "item", dataset: { kind: item.kind, name: item.name } },
      el("span", { className: "what", text: item.kind }), " ", name);
  }

  function renderWeakPoints(data) {
    const groups = weakGroups(data);
    const failures = groups.reduce((sum, g) => sum + g.items.length, 0);
    count("n-weak", groups.length);
    const draw = () => renderWeakPoints(data);
    const parts = [];
    if (groups.length) {
      parts.push(el("p", { className: "tally", text:
        `${plural(failures, "single failure")} would cut nodes off, in ${plural(groups.length, "group")}; ` +
        `the worst cuts off ${plural(groups[0].count, "node")}.` }));
      parts.push(table(["If any of these fails", "Cut off", "Nodes cut off"],
        capped("weak", groups, WEAK_SHOWN).map((g) => ({
          attrs: { className: "group", dataset: { count: g.count, items: g.items.length } },
          cells: [
            el("span", { className: "items" }, ...g.items.map(weakItem)),
            el("span", { className: "num", text: g.count }),
            nodeList(g.cut, g.count),
          ],
        })), "weak"));
      parts.push(moreButton("weak", groups.length, WEAK_SHOWN, "groups", draw));
    } else {
      parts.push(empty("No single point of failure: every node has a second way to a gateway."));
    }
    const orphans = data.without_gateway || [];
    if (orphans.length) {
      parts.push(el("p", { className: "orphans" },
        el("strong", { text: `${plural(orphans.length, "reporting node")} reach no gateway at all: ` }),
        nodeList(orphans, orphans.length)));
    }
    if (data.computed_at) {
      parts.push(el("p", { className: "note" }, "computed at ", timeEl(data.computed_at)));
    }
    replace("weak-points", ...parts);
    renderFading(data.fading_links || []);
  }

  function renderFading(fading) {
    count("n-fading", fading.length);
    if (!fading.length) {
      replace("fading-links", empty("No fading links."));
      return;
    }
    const sorted = fading.slice().sort((a, b) =>
      (a.signal_dbm - a.baseline_dbm) - (b.signal_dbm - b.baseline_dbm));
    replace("fading-links", table(
      ["Link", "Baseline", "Now", "Drop", "State"],
      capped("fading", sorted, FADING_SHOWN).map((f) => ({
        cells: [
          `${f.src} → ${f.dst} (${f.iface}, ${f.kind})`,
          `${f.baseline_dbm} dBm`,
          `${f.signal_dbm} dBm`,
          `${(f.signal_dbm - f.baseline_dbm).toFixed(1)} dB`,
          f.degraded ? badge("degraded", "state") : "fading",
        ],
      })), "fading"),
    moreButton("fading", sorted.length, FADING_SHOWN, "fading links", () => renderFading(fading)));
  }

  // ------------------------------------------------------------------ bridges
  function renderBridges(data) {
    const bridges = data.bridges || [];
    count("n-bridges", bridges.length);
    if (!bridges.length) {
      replace("bridges", empty("No meshmon-bridge speaks for any node."));
      return;
    }
    replace("bridges", table(
      ["Bridge", "State", "Since", "Nodes", "Sources", "Unmonitored"],
      bridges.map((b) => ({
        attrs: { dataset: { bridge: b.id, online: String(b.online) } },
        cells: [
          el("strong", { text: b.id }),
          badge(b.online === null ? "never heard" : b.online ? "online" : "silent", "bridge"),
          b.since == null ? "—" : el("span", null, timeEl(b.since), el("br"),
            el("small", { text: `for ${since(b.since)}` })),
          el("span", { className: "num", text: b.nodes }),
          Object.entries(b.kinds || {}).map(([k, n]) => `${k} ${n}`).join(", ") || "—",
          el("span", { className: "num", text: b.unmonitored }),
        ],
      })), "bridges"));
  }

  // ------------------------------------------------------------------ the alert log
  function renderLog(log) {
    if (!log.length) {
      replace("alert-log", empty("No alerts yet."));
      return;
    }
    const newest = log.slice().sort((a, b) => b.ts - a.ts);
    const pages = Math.ceil(newest.length / LOG_PAGE);
    logPage = Math.min(logPage, pages - 1);
    const first = logPage * LOG_PAGE;
    const rows = newest.slice(first, first + LOG_PAGE);
    const go = (page) => { logPage = page; renderLog(log); };
    const pager = el("div", { className: "pager" },
      el("button", { type: "button", className: "newer", text: "← Newer", disabled: logPage === 0,
        onclick: () => go(logPage - 1) }),
      el("span", { className: "page", text:
        `${first + 1}–${first + rows.length} of ${newest.length}${newest.length >= LOG_LIMIT ? " latest" : ""}` }),
      el("button", { type: "button", className: "older", text: "Older →", disabled: logPage >= pages - 1,
        onclick: () => go(logPage + 1) }));
    replace("alert-log", table(
      ["Time", "Status", "Kind", "Severity", "Summary", "Sent to", "Silenced"],
      rows.map((a) => {
        const reminder = a.payload && a.payload.reminder;
        const notifiers = a.notifiers || [];
        return {
          attrs: { dataset: { status: a.status, kind: a.kind, id: a.id } },
          cells: [
            timeEl(a.ts),
            el("span", null, badge(a.status, "status"), reminder ? " (reminder)" : null),
            a.kind.replace("_", " "),
            badge(a.severity, "sev"),
            el("span", { className: "summary", text: a.summary }),
            notifiers.length ? notifiers.join(", ")
              : el("span", { className: "muted", text: a.silenced ? "nobody (silenced)" : "nobody" }),
            a.silenced ? el("strong", { text: "silenced" }) : el("span", { className: "muted", text: "no" }),
          ],
        };
      }), "log"), pages > 1 ? pager : null);
  }

  // ------------------------------------------------------------------ silences
  function target(s) {
    return [s.node ? s.node : "any node", s.tag ? `tag ${s.tag}` : null].filter(Boolean).join(", ");
  }

  function by(s) {
    return s.created_by || el("span", { className: "muted", text: "—" });
  }

  function renderSilences(list) {
    const now = nowMs() / 1000;
    // the newest first: the one just made is on top, the list capped below it
    const current = list.filter((s) => !s.ended_early && s.ends_at > now)
      .sort((a, b) => (b.created_at - a.created_at) || (b.id - a.id));
    const ended = list.filter((s) => s.ended_early || s.ends_at <= now)
      .sort((a, b) => b.ends_at - a.ends_at);
    count("n-silences", current.length);
    count("n-ended", ended.length);
    const draw = () => renderSilences(list);
    if (!current.length) {
      replace("silences", empty("No silences."));
    } else {
      replace("silences", table(
        ["Node / tag", "When", "Reason", "By", ""],
        capped("silences", current, SILENCES_SHOWN).map((s) => {
          const future = s.starts_at > now + 5;
          const end = el("button", {
            type: "button", className: "end", text: future ? "Cancel" : "End now",
            "aria-label": `End the silence of ${target(s)}`,
            onclick: () => endSilence(s.id, end),
          });
          return {
            attrs: { dataset: { id: s.id, node: s.node } },
            cells: [
              el("strong", { text: target(s) }),
              el("span", null,
                future ? el("span", null, "from ", timeEl(s.starts_at), " ") : null,
                "until ", timeEl(s.ends_at), " ",
                el("small", { text: future ? `starts in ${fmtDuration(s.starts_at - now)}`
                  : `ends in ${fmtDuration(s.ends_at - now)}` })),
              s.reason || el("span", { className: "muted", text: "—" }),
              by(s),
              end,
            ],
          };
        }), "silences"),
      moreButton("silences", current.length, SILENCES_SHOWN, "silences", draw));
    }
    if (!ended.length) {
      replace("silences-ended", empty("None in the last 7 days."));
    } else {
      replace("silences-ended", table(
        ["Node / tag", "From", "Ended", "Reason", "By"],
        capped("ended", ended, ENDED_SHOWN).map((s) => ({
          attrs: { className: "ended", dataset: { id: s.id, node: s.node } },
          cells: [
            el("strong", { text: target(s) }),
            timeEl(s.starts_at),
            el("span", null, timeEl(s.ends_at), " ",
              el("small", { text: s.ended_early ? "ended early" : "ran out" })),
            s.reason || el("span", { className: "muted", text: "—" }),
            by(s),
          ],
        })), "silences ended"),
      moreButton("ended", ended.length, ENDED_SHOWN, "ended silences", draw));
    }
  }

  // ------------------------------------------------------------------ silences: create, end
  // "2h", "30m", "1h30m", "1d", "90s", "1.5h"; a bare number is minutes.
  function parseDuration(text) {
    const t = String(text).trim().toLowerCase().replace(/\s+/g, "");
    if (!t) return null;
    if (/^\d+(\.\d+)?$/.test(t)) return parseFloat(t) * 60;
    const units = { d: 86400, h: 3600, m: 60, min: 60, s: 1 };
    const re = /(\d+(?:\.\d+)?)(d|h|min|m|s)/g;
    let total = 0;
    let consumed = 0;
    let match;
    while ((match = re.exec(t)) !== null) {
      if (match.index !== consumed) return null;
      total += parseFloat(match[1]) * units[match[2]];
      consumed = re.lastIndex;
    }
    if (consumed !== t.length || total <= 0) return null;
    return total;
  }

  function tell(msg, text, isError) {
    msg.textContent = text;
    msg.classList.toggle("error", Boolean(isError));
  }

  function say(text, isError) {
    tell($("silence-msg"), text, isError);
  }

  async function createSilence(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const node = form.elements.node.value.trim();
    const tag = form.elements.tag.value.trim();
    const reason = form.elements.reason.value.trim();
    const who = form.elements.by.value.trim();
    const duration = parseDuration(form.elements.duration.value);
    if (!node && !tag) { say("Give a node (a glob such as bb-*, or * for all) or a tag.", true); return; }
    if (duration === null) { say("Duration like 2h, 30m, 1h30m or 1d.", true); return; }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const saved = await api("/api/v1/silences", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ node, tag, duration_s: Math.round(duration), reason,
          created_by: who || "admin page" }),
      });
      form.reset();
      form.elements.by.value = who; // the name is not part of one silence: it stays
      say(`Silenced ${saved.node || "any node"}${saved.tag ? ` (tag ${saved.tag})` : ""} until ${fmtTime(saved.ends_at)}.`, false);
      await refreshSilences();
    } catch (err) {
      if (err instanceof AuthError) { showSignedOut(); return; }
      say(`Not saved: ${err.message}`, true);
    } finally {
      button.disabled = false;
    }
  }

  async function endSilence(id, button) {
    button.disabled = true;
    try {
      await api(`/api/v1/silences/${encodeURIComponent(id)}`, { method: "DELETE" });
      say("Silence ended.", false);
    } catch (err) {
      if (err instanceof AuthError) { showSignedOut(); return; }
      say(`Could not end it: ${err.message}`, true);
    }
    await refreshSilences();
  }

  function silencesPath() {
    return `/api/v1/silences?ended_since=${Math.floor(nowMs() / 1000 - ENDED_WINDOW_S)}`;
  }

  function showSilences(data) {
    latest.silences = data.silences || [];
    renderSilences(latest.silences);
    if (!quick) renderCards(); // a card says when it is silenced
  }

  async function refreshSilences() {
    try {
      showSilences(await api(silencesPath()));
    } catch (err) {
      if (err instanceof AuthError) { showSignedOut(); return; }
      replace("silences", problem(err));
    }
  }

  // ------------------------------------------------------------------ loading
  function showSignedOut() {
    signedOut = true;
    if (timer) clearTimeout(timer);
    const status = $("status");
    status.replaceChildren("Signed out or session expired — ",
      el("a", { href: "/admin", text: "sign in again" }), ".");
    status.className = "status error";
  }

  async function loadAll() {
    const jobs = {
      outages: api("/api/v1/outages"),
      weak: api("/api/v1/weak-points"),
      alerts: api(`/api/v1/alerts?limit=${LOG_LIMIT}`),
      silences: api(silencesPath()),
      bridges: api("/api/v1/bridges"),
    };
    const names = Object.keys(jobs);
    const results = await Promise.allSettled(Object.values(jobs));
    const got = {};
    let failed = 0;
    results.forEach((r, i) => {
      got[names[i]] = r;
      if (r.status === "rejected") {
        failed += 1;
        if (r.reason instanceof AuthError) signedOut = true;
      }
    });
    if (signedOut) { showSignedOut(); return; }
    const show = (result, render, ids) => {
      if (result.status === "fulfilled") {
        try { render(result.value); return; } catch (err) { result = { reason: err }; failed += 1; }
      }
      for (const id of ids) replace(id, problem(result.reason));
    };
    // the silences first: the cards say which of them hold an incident
    show(got.silences, (v) => { latest.silences = v.silences || []; renderSilences(latest.silences); },
      ["silences"]);
    if (got.outages.status === "fulfilled") latest.outages = got.outages.value.outages || [];
    if (got.alerts.status === "fulfilled") latest.open = got.alerts.value.open || [];
    // while a "silence this" form is open the cards hold still (it would lose what is typed)
    if (!quick) {
      show(got.outages, renderOutages, ["outages"]);
      show(got.alerts, renderIncidents, ["incidents"]);
    }
    show(got.weak, renderWeakPoints, ["weak-points", "fading-links"]);
    show(got.alerts, (v) => renderLog(v.log || []), ["alert-log"]);
    show(got.bridges, renderBridges, ["bridges"]);
    const status = $("status");
    status.className = failed ? "status error" : "status";
    status.replaceChildren(failed ? "Some data could not be loaded · " : "Updated ",
      timeEl(nowMs() / 1000));
    document.body.dataset.ready = "1";
  }

  function load() {
    if (!loading) {
      loading = loadAll()
        .catch((err) => {
          const status = $("status");
          status.textContent = `Could not load: ${err.message}`;
          status.className = "status error";
        })
        .finally(() => { loading = null; schedule(); });
    }
    return loading;
  }

  function schedule() {
    if (timer) clearTimeout(timer);
    if (signedOut) return;
    timer = setTimeout(() => {
      if (document.hidden) { schedule(); return; }
      load();
    }, REFRESH_MS);
  }

  function start() {
    narrow.addEventListener("change", () => { if (!signedOut) load(); });
    $("silence-by").value = document.body.dataset.user || "";
    $("silence-form").addEventListener("submit", createSilence);
    $("refresh").addEventListener("click", () => load());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && !signedOut) load();
    });
    load();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
