// The history pages `/node/NODE` and `/link/A/B`: charts (uPlot) of the history API for
// one range at a time (1 h, 24 h, 7 d, 30 d, 1 y). Plain ES2020, no build step; text from
// the network is set with textContent only.
//
// Contract for tests: after each render `document.body.dataset.ready` is the range shown,
// and every chart's element (`.chart`) has `data-metric` and `data-points`: the number of
// values drawn of each of its lines, comma-separated, in legend order.
"use strict";

(() => {
  const CFG = JSON.parse(document.getElementById("history-config").textContent);
  const root = document.getElementById("history");
  const status = document.getElementById("status");
  const csvLink = document.getElementById("csv");
  const jsonLink = document.getElementById("json");
  const CSS = getComputedStyle(document.documentElement);
  const colour = (name, fallback) => CSS.getPropertyValue(`--${name}`).trim() || fallback;
  const PALETTE = ["#1d5fa8", "#d95f02", "#1a9850", "#7b3294", "#e7298a", "#66a61e",
    "#a6761d", "#666666"];
  let range = CFG.range;
  let charts = [];
  let loading = 0;

  // what each metric is called, its unit, and how its values are shown
  const METRICS = {
    signal_dbm: ["Signal", "dBm"], signal_avg_dbm: ["Signal (average)", "dBm"],
    noise_dbm: ["Noise", "dBm"], snr_db: ["SNR", "dB"], tq: ["TQ", "of 255"],
    lq: ["LQ", ""], nlq: ["NLQ", ""], etx: ["ETX", ""], cost: ["Cost", ""],
    rxcost: ["RX cost", ""], txcost: ["TX cost", ""],
    tx_rate_mbps: ["TX rate", "Mbit/s"], rx_rate_mbps: ["RX rate", "Mbit/s"],
    expected_tput_mbps: ["Expected throughput", "Mbit/s"],
    rx_bps: ["Received", "Mbit/s", 1e-6], tx_bps: ["Sent", "Mbit/s", 1e-6],
    rx_pps: ["Packets in", "/s"], tx_pps: ["Packets out", "/s"],
    tx_retries_per_s: ["Retries", "/s"], tx_failed_per_s: ["Failed", "/s"],
    ccq_pct: ["CCQ", "%"], tx_ccq_pct: ["TX CCQ", "%"], rx_ccq_pct: ["RX CCQ", "%"],
    quality_pct: ["Quality", "%"], capacity_pct: ["Capacity", "%"],
    tx_capacity_mbps: ["TX capacity", "Mbit/s"], rx_capacity_mbps: ["RX capacity", "Mbit/s"],
    distance_m: ["Distance", "m"], remote_signal_dbm: ["Remote signal", "dBm"],
    remote_snr_db: ["Remote SNR", "dB"], mcs: ["MCS", ""],
    clients: ["Clients", ""], load1: ["Load (1 min)", ""], load5: ["Load (5 min)", ""],
    load15: ["Load (15 min)", ""], mem_used_pct: ["Memory used", "%"],
    rootfs_used_pct: ["Root fs used", "%"], busy_pct: ["Channel busy", "%"],
  };
  const label = (m) => (METRICS[m] || [m])[0];
  const unit = (m) => (METRICS[m] || [m, ""])[1];
  const factor = (m) => (METRICS[m] || [])[2] || 1;
  // charts that share a unit go together: the rates of a link in one chart, etc.
  const LINK_CHARTS = [
    ["Signal", ["signal_dbm"]],
    ["Link quality", ["tq", "etx", "cost", "lq", "nlq"]],
    ["Rates", ["tx_rate_mbps", "rx_rate_mbps", "expected_tput_mbps"]],
  ];

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null) continue;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  const pad = (n) => String(n).padStart(2, "0");
  function when(ts) {
    const d = new Date(ts * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }
  function duration(s) {
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 2 * 86400) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
  }
  const STEP_WORDS = { 0: "every sample", 300: "5-minute steps", 3600: "hourly steps",
    86400: "daily steps" };

  // ------------------------------------------------------------------ data
  function query(format) {
    const q = new URLSearchParams({ range });
    if (CFG.kind === "node") q.set("metrics", CFG.metrics.join(","));
    if (CFG.kind === "node") q.set("stats", "mean");
    if (format) q.set("format", format);
    return `${CFG.api}?${q}`;
  }

  // One chart's x values and y arrays. Stepped answers share `doc.t` (null = no data that
  // step: a gap). Raw answers have each series' own times: they are merged, a series
  // without a sample at a time gets `undefined` (uPlot draws across it), and a silence
  // longer than three of its usual intervals gets a null (a gap).
  function align(doc, list, scale) {
    if (doc.t) return [doc.t, list.map((s) => s.mean.map((v) => (v == null ? null : v * scale)))];
    const gaps = list.map((s) => {
      const t = s.t, steps = [];
      for (let i = 1; i < t.length; i++) steps.push(t[i] - t[i - 1]);
      steps.sort((a, b) => a - b);
      const usual = steps.length ? steps[Math.floor(steps.length / 2)] : 0;
      const found = [];
      for (let i = 1; i < t.length; i++) {
        if (usual && t[i] - t[i - 1] > 3 * usual) found.push(t[i - 1] + usual);
      }
      return found;
    });
    const xs = [...new Set(list.flatMap((s, i) => [...s.t, ...gaps[i]]))].sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    const ys = list.map((s, i) => {
      const y = new Array(xs.length).fill(undefined);
      s.t.forEach((t, j) => { y[at.get(t)] = s.mean[j] * scale; });
      for (const g of gaps[i]) y[at.get(g)] = null;
      return y;
    });
    return [xs, ys];
  }

  // ------------------------------------------------------------------ charts
  // A chart of `lines` ([{label, series: [one answer series]}]) added to `parent`.
  function chart(parent, title, metric, lines, doc) {
    const box = el("figure", { class: "chart", "data-metric": metric },
      el("figcaption", { text: unit(metric) ? `${title} (${unit(metric)})` : title }));
    parent.append(box);
    const usable = lines.filter((l) => l.series.length);
    const [xs, ys] = align(doc, usable.map((l) => l.series[0]), factor(metric));
    const counts = ys.map((y) => y.filter((v) => v != null).length);
    box.dataset.points = counts.join(",");
    if (!counts.some((n) => n > 0)) {
      box.append(el("p", { class: "empty", text: "No data in this range." }));
      return box;
    }
    const plot = el("div", { class: "plot" });
    box.append(plot);
    const opts = {
      width: Math.max(200, plot.clientWidth || root.clientWidth),
      height: 170,
      scales: { x: { time: true, range: [doc.from, doc.to] } },
      axes: [{ stroke: colour("muted", "#5b6470") },
        { stroke: colour("muted", "#5b6470"), size: 56 }],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      series: [{ label: "time", value: (u, v) => (v == null ? "–" : when(v)) },
        ...usable.map((l, i) => ({
          label: l.label, stroke: l.colour || PALETTE[i % PALETTE.length], width: 1.5,
          spanGaps: false, points: { show: xs.length < 60 },
          value: (u, v) => (v == null ? "–" : `${+v.toFixed(2)} ${unit(metric)}`.trim()),
        }))],
    };
    const u = new uPlot(opts, [xs, ...ys], plot);
    charts.push(u);
    return box;
  }

  function availabilityStrip(doc, series) {
    const share = series ? series.mean : [];
    const known = share.filter((v) => v != null);
    const box = el("section", { class: "availability", "aria-label": "Availability" });
    if (!known.length) {
      box.append(el("p", { class: "empty", text: "Availability: no reports in this range." }));
      return box;
    }
    const mean = known.reduce((a, b) => a + b, 0) / known.length;
    box.append(el("h2", { text: `Up ${(mean * 100).toFixed(mean > 0.999 ? 0 : 1)} % of the time shown` }));
    const strip = el("div", { class: "strip", "data-steps": String(share.length) });
    share.forEach((v, i) => {
      const cls = v == null ? "none" : v >= 0.999 ? "up" : v > 0 ? "partly" : "down";
      const text = v == null ? "no data" : `${(v * 100).toFixed(1)} % up`;
      // a raw answer (every sample) gives the strip its own steps
      const t = series.t || doc.t;
      strip.append(el("span", { class: `cell ${cls}`, title: `${when(t[i])}: ${text}` }));
    });
    box.append(strip);
    return box;
  }

  function outageList(outages) {
    const box = el("section", { class: "outages" }, el("h2", { text: "Outages" }));
    if (!outages || !outages.length) {
      box.append(el("p", { class: "muted", text: "None in this range." }));
      return box;
    }
    const list = el("ul", {});
    for (const o of outages) {
      const end = o.ended_at == null ? "still going on" : `for ${duration(o.ended_at - o.started_at)}`;
      const role = o.role === "cause" ? "this node was the cause"
        : "this node was cut off";
      const causes = el("span", { class: "causes" });
      const named = [...o.cause, ...o.cause_links.map((l) => `${l.a}–${l.b}`)];
      if (o.role !== "cause" && named.length) {
        causes.append(" (cause: ");
        o.cause.forEach((c, i) => {
          if (i) causes.append(", ");
          causes.append(el("a", { href: `/node/${encodeURIComponent(c)}`, text: c }));
        });
        if (o.cause_links.length) causes.append(`${o.cause.length ? ", " : ""}link ${o.cause_links.map((l) => `${l.a}–${l.b}`).join(", ")}`);
        causes.append(")");
      }
      const others = o.affected.length ? `, ${o.affected.length} node${o.affected.length > 1 ? "s" : ""} cut off` : "";
      list.append(el("li", { class: `outage ${o.role}` },
        el("b", { text: when(o.started_at) }), ` ${end}: ${role}`, causes, others));
    }
    box.append(list);
    return box;
  }

  function section(title) {
    const box = el("section", { class: "group" }, el("h2", {}, title));
    root.append(box);
    return box;
  }

  const ifaceOf = (s) => (s.iface == null ? "?" : s.iface);

  function renderNode(doc) {
    const me = CFG.node;
    const find = (pred) => doc.series.filter(pred);
    root.append(availabilityStrip(doc, find((s) => s.kind === "node" && s.metric === "availability")[0]));
    root.append(outageList(doc.outages));
    const own = section("This node");
    for (const m of ["clients", "load1", "mem_used_pct"]) {
      const s = find((x) => x.kind === "node" && x.metric === m);
      chart(own, label(m), m, [{ label: label(m), series: s }], doc);
    }
    const traffic = find((s) => s.kind === "iface" && (s.metric === "rx_bps" || s.metric === "tx_bps"));
    chart(own, "Traffic", "rx_bps", traffic.map((s) => ({
      label: `${ifaceOf(s)} ${s.metric === "rx_bps" ? "in" : "out"}`, series: [s] })), doc);
    // links: one group per neighbour and kind, this node's view and the neighbour's
    const groups = new Map();
    for (const s of doc.series.filter((x) => x.kind === "link")) {
      const other = s.node === me ? s.peer : s.node;
      const key = `${other} ${s.link_kind}`;
      if (!groups.has(key)) groups.set(key, { other, kind: s.link_kind, series: [] });
      groups.get(key).series.push(s);
    }
    for (const g of [...groups.values()].sort((a, b) => (a.other + a.kind).localeCompare(b.other + b.kind))) {
      const title = el("span", {}, el("a", {
        href: `/link/${encodeURIComponent(me)}/${encodeURIComponent(g.other)}`, text: g.other }),
        ` (${g.kind})`);
      const box = section(title);
      box.classList.add("link");
      for (const [name, metrics] of LINK_CHARTS) {
        const lines = [];
        for (const m of metrics) {
          for (const s of g.series.filter((x) => x.metric === m)) {
            const who = s.node === me ? "this node" : g.other;
            const what = metrics.length > 1 ? `${label(m)}, ` : "";
            lines.push({ label: `${what}${who} (${ifaceOf(s)})`, series: [s] });
          }
        }
        if (lines.length) chart(box, name, lines[0].series[0].metric, lines, doc);
      }
    }
  }

  function renderLink(doc) {
    const a = CFG.a;
    const metrics = [...new Set(doc.series.map((s) => s.metric))];
    const order = Object.keys(METRICS);
    metrics.sort((x, y) => ((order.indexOf(x) + 1 || 999) - (order.indexOf(y) + 1 || 999)) || x.localeCompare(y));
    const box = section(`${CFG.names[0]} ↔ ${CFG.names[1]}`);
    for (const m of metrics) {
      if (m === "seq" || m === "up_s") continue;
      const lines = doc.series.filter((s) => s.metric === m).map((s) => ({
        label: `${s.node === a ? CFG.names[0] : CFG.names[1]} hears ` +
          `${s.node === a ? CFG.names[1] : CFG.names[0]} (${ifaceOf(s)}, ${s.link_kind})`,
        series: [s],
      }));
      chart(box, label(m), m, lines, doc);
    }
    if (!metrics.length) box.append(el("p", { class: "empty", text: "No data in this range." }));
  }

  // ------------------------------------------------------------------ loading
  function render(doc) {
    for (const u of charts) u.destroy();
    charts = [];
    root.replaceChildren();
    if (CFG.kind === "node") renderNode(doc); else renderLink(doc);
    const words = STEP_WORDS[doc.step] || `${duration(doc.step)} steps`;
    status.textContent = `${when(doc.from)} – ${when(doc.to)}, ${words}`;
    document.body.dataset.ready = range;
  }

  async function load() {
    const mine = ++loading;
    status.textContent = "Loading…";
    delete document.body.dataset.ready;
    csvLink.href = query("csv");
    jsonLink.href = query();
    try {
      const r = await fetch(query(), { headers: { Accept: "application/json" } });
      const doc = await r.json();
      if (mine !== loading) return;
      if (!r.ok) throw new Error(doc.error || r.statusText);
      render(doc);
    } catch (err) {
      if (mine !== loading) return;
      status.textContent = `Could not load the history: ${err.message}`;
    }
  }

  for (const a of document.querySelectorAll(".ranges a[data-range]")) {
    a.addEventListener("click", (ev) => {
      ev.preventDefault();
      range = a.dataset.range;
      for (const b of document.querySelectorAll(".ranges a")) b.removeAttribute("aria-current");
      a.setAttribute("aria-current", "page");
      history.replaceState(null, "", `?range=${encodeURIComponent(range)}`);
      load();
    });
  }

  let resizing = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const u of charts) {
        const w = u.root.parentElement.clientWidth;
        if (w) u.setSize({ width: w, height: 170 });
      }
    }, 150);
  });

  load();
})();
