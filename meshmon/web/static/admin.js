// meshmon maintainer view: outages, weak points, incidents, alert log, silences.
// Plain JS, no framework. The session cookie (HttpOnly) authorises the API calls, so this
// script never sees the token. Everything from the network goes in through textContent.
"use strict";

(function () {
  const REFRESH_MS = 10000;
  const LOG_LIMIT = 200;
  const CUT_SHOWN = 12;
  let serverOffsetMs = 0; // server clock − browser clock, from the Date header
  let timer = null;
  let signedOut = false;
  let loading = null;

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

  function badge(value, kind) {
    return el("span", { className: `badge ${kind}-${value}`, text: value });
  }

  function nodeList(nodes, total) {
    const shown = nodes.slice(0, CUT_SHOWN);
    const list = el("span", { className: "nodes" });
    for (const n of shown) list.append(el("span", { className: "chip", text: n }));
    const rest = nodes.slice(CUT_SHOWN);
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

  function empty(text) { return el("p", { className: "empty", text }); }

  function problem(err) {
    return el("p", { className: "error", role: "alert", text: `Could not load: ${err.message}` });
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
    $(id).replaceChildren(...nodes);
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

  // ------------------------------------------------------------------ sections
  function renderOutages(data) {
    const outages = data.outages || [];
    if (!outages.length) {
      replace("outages", empty("No outages: every node reaches a gateway."));
      return;
    }
    const cards = outages
      .slice()
      .sort((a, b) => (b.affected_count - a.affected_count) || (a.started_at_ts - b.started_at_ts))
      .map((o) => {
        const affected = o.affected || [];
        const count = o.affected_count ?? affected.length;
        return el("article", { className: `card outage sev-${o.severity}`, id: o.id },
          el("header", null,
            badge(o.severity, "sev"),
            el("strong", { className: "cause", text: causeText(o.cause) }),
            el("span", { className: "since" }, "since ", timeEl(o.started_at_ts),
              el("span", { className: "for", text: ` · for ${since(o.started_at_ts)}` }))),
          el("p", { className: "summary", text: o.summary }),
          el("div", { className: "affected" },
            el("span", { className: "count", text: count === 1 ? "1 node cut off" : `${count} nodes cut off` }),
            count ? nodeList(affected, count) : null));
      });
    replace("outages", ...cards);
  }

  function renderWeakPoints(data) {
    const rows = [];
    for (const n of data.nodes || []) {
      rows.push({ what: "node", name: n.node, cut: n.cut_off || [], count: n.cut_off_count });
    }
    for (const l of data.links || []) {
      rows.push({ what: "link", name: `${l.a} — ${l.b}`, cut: l.cut_off || [], count: l.cut_off_count });
    }
    rows.sort((a, b) => (b.count - a.count) || a.name.localeCompare(b.name));
    const parts = [];
    if (rows.length) {
      parts.push(table(["If this fails", "Cut off", "Nodes cut off"], rows.map((r) => ({
        attrs: { dataset: { kind: r.what, name: r.name } },
        cells: [
          el("span", null, el("span", { className: "what", text: r.what }), " ",
            el("strong", { text: r.name })),
          el("span", { className: "num", text: r.count }),
          nodeList(r.cut, r.count),
        ],
      })), "weak"));
    } else {
      parts.push(empty("No single point of failure: every node has a second way to a gateway."));
    }
    const orphans = data.without_gateway || [];
    if (orphans.length) {
      parts.push(el("p", { className: "orphans" },
        el("strong", { text: `${orphans.length} reporting node(s) reach no gateway at all: ` }),
        nodeList(orphans, orphans.length)));
    }
    if (data.computed_at) {
      parts.push(el("p", { className: "note" }, "computed at ", timeEl(data.computed_at)));
    }
    replace("weak-points", ...parts);

    const fading = data.fading_links || [];
    if (!fading.length) {
      replace("fading-links", empty("No fading links."));
      return;
    }
    replace("fading-links", table(
      ["Link", "Baseline", "Now", "Drop", "State"],
      fading.map((f) => ({
        cells: [
          `${f.src} → ${f.dst} (${f.iface}, ${f.kind})`,
          `${f.baseline_dbm} dBm`,
          `${f.signal_dbm} dBm`,
          `${(f.signal_dbm - f.baseline_dbm).toFixed(1)} dB`,
          f.degraded ? badge("degraded", "state") : "fading",
        ],
      })), "fading"));
  }

  function renderIncidents(open) {
    if (!open.length) {
      replace("incidents", empty("Nothing open."));
      return;
    }
    const sorted = open.slice().sort((a, b) => b.started_at_ts - a.started_at_ts);
    replace("incidents", table(
      ["Kind", "Severity", "What", "Cut off", "Since", "Summary"],
      sorted.map((i) => ({
        attrs: { dataset: { kind: i.kind, id: i.id } },
        cells: [
          el("span", { className: "kind", text: i.kind.replace("_", " ") }),
          badge(i.severity, "sev"),
          causeText(i.cause),
          el("span", { className: "num", text: i.affected_count ?? 0 }),
          el("span", null, timeEl(i.started_at_ts), el("br"),
            el("small", { text: `for ${since(i.started_at_ts)}` })),
          el("span", { className: "summary", text: i.summary }),
        ],
      })), "incidents"));
  }

  function renderLog(log) {
    if (!log.length) {
      replace("alert-log", empty("No alerts yet."));
      return;
    }
    const newest = log.slice().sort((a, b) => b.ts - a.ts);
    replace("alert-log", table(
      ["Time", "Status", "Kind", "Severity", "Summary", "Sent to", "Silenced"],
      newest.map((a) => {
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
            notifiers.length ? notifiers.join(", ") : el("span", { className: "muted", text: "nobody" }),
            a.silenced ? el("strong", { text: "silenced" }) : el("span", { className: "muted", text: "no" }),
          ],
        };
      }), "log"));
  }

  function renderSilences(data) {
    const list = data.silences || [];
    if (!list.length) {
      replace("silences", empty("No silences."));
      return;
    }
    const now = nowMs() / 1000;
    replace("silences", table(
      ["Node / tag", "From", "Until", "Reason", "By", ""],
      list.map((s) => {
        const target = [s.node ? s.node : "any node", s.tag ? `tag ${s.tag}` : null]
          .filter(Boolean).join(", ");
        const future = s.starts_at > now + 5;
        const end = el("button", {
          type: "button", className: "end", text: future ? "Cancel" : "End now",
          "aria-label": `End the silence of ${target}`,
          onclick: () => endSilence(s.id, end),
        });
        return {
          attrs: { dataset: { id: s.id, node: s.node } },
          cells: [
            el("strong", { text: target }),
            el("span", null, timeEl(s.starts_at), el("br"),
              el("small", { text: future ? `in ${fmtDuration(s.starts_at - now)}` : "active" })),
            el("span", null, timeEl(s.ends_at), el("br"),
              el("small", { text: `in ${fmtDuration(s.ends_at - now)}` })),
            s.reason || el("span", { className: "muted", text: "—" }),
            s.created_by || el("span", { className: "muted", text: "—" }),
            end,
          ],
        };
      }), "silences"));
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

  function say(text, isError) {
    const msg = $("silence-msg");
    msg.textContent = text;
    msg.classList.toggle("error", Boolean(isError));
  }

  async function createSilence(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const node = form.elements.node.value.trim();
    const tag = form.elements.tag.value.trim();
    const reason = form.elements.reason.value.trim();
    const duration = parseDuration(form.elements.duration.value);
    if (!node && !tag) { say("Give a node (a glob such as bb-*, or * for all) or a tag.", true); return; }
    if (duration === null) { say("Duration like 2h, 30m, 1h30m or 1d.", true); return; }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const saved = await api("/api/v1/silences", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ node, tag, duration_s: Math.round(duration), reason, created_by: "admin page" }),
      });
      form.reset();
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

  async function refreshSilences() {
    try {
      renderSilences(await api("/api/v1/silences"));
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
      silences: api("/api/v1/silences"),
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
    show(got.outages, renderOutages, ["outages"]);
    show(got.weak, renderWeakPoints, ["weak-points", "fading-links"]);
    show(got.alerts, (v) => { renderIncidents(v.open || []); renderLog(v.log || []); },
      ["incidents", "alert-log"]);
    show(got.silences, renderSilences, ["silences"]);
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
