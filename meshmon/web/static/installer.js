// The installer view: one node's links, live, for a phone on a roof.
// Reads /api/v1/live/NODE (Server-Sent Events; see meshmon/web/installer.py for the event).
// Test contract: window.meshmonInstaller = {updates, verdicts: {peer: verdict}, last}.
// Quality words are the map's (good / fair / poor / unknown); each end grades what it
// hears and the worse end decides the verdict.
"use strict";

(function () {
  const body = document.body;
  const node = body.dataset.node;
  const SPARK_WINDOW_S = 300;
  const RECONNECT_MS = 5000;
  const RANK = { good: 3, fair: 2, poor: 1, unknown: 0 };

  const state = { updates: 0, verdicts: {}, last: null };
  window.meshmonInstaller = state;

  const els = {
    status: document.getElementById("status"),
    heard: document.getElementById("heard"),
    links: document.getElementById("links"),
    unresolved: document.getElementById("unresolved"),
    connection: document.getElementById("connection"),
    tone: document.getElementById("tone"),
    reset: document.getElementById("reset"),
    yesterday: document.getElementById("yesterday"),
  };

  // per link key: its card's elements, min/peak hold and recent samples
  const cards = new Map();
  let receivedAt = 0; // performance.now() of the last event
  let source = null;

  // ------------------------------------------------------------------ formatting
  function num(value, digits) {
    if (value === null || value === undefined) return "–";
    return Number(value).toFixed(digits === undefined ? 0 : digits);
  }

  function withUnit(value, unit, digits) {
    return value === null || value === undefined ? "–" : num(value, digits) + " " + unit;
  }

  function signed(value) {
    if (value === null || value === undefined) return "–";
    return (value > 0 ? "+" : "") + num(value, 1);
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return s + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ------------------------------------------------------------------ status line
  function elapsed() {
    return receivedAt ? (performance.now() - receivedAt) / 1000 : 0;
  }

  function statusText(ev) {
    const hasLinks = ev.links.length > 0;
    if (!ev.known) {
      return hasLinks
        ? ["unknown", "Not heard from " + ev.node + " itself: no agent reports reach the " +
           "collector. Below is what its neighbours hear of it."]
        : ["unknown", "Not heard from " + ev.node + " yet: no report has reached the " +
           "collector. Is the agent installed and running, and can it reach the broker? " +
           "This page updates by itself when it reports."];
    }
    if (!ev.reported) {
      return ["unknown", ev.node + " has announced itself but has not sent a report yet."];
    }
    if (!ev.online || ev.state === "offline") {
      return ["offline", ev.node + " is offline. The values below are the last ones " +
              "received."];
    }
    if (ev.state === "silent") {
      return ["offline", ev.node + ": agent silent, its reports stopped arriving."];
    }
    if (ev.state === "unmonitored") {
      return ["warn", ev.node + " is unmonitored: the meshmon-bridge that speaks for it is " +
              "silent, so nothing is known of it now. The values below are the last ones " +
              "received."];
    }
    if (ev.state === "unreachable") {
      return ["offline", ev.node + " is cut off: it reports, but has no path to a gateway."];
    }
    if (ev.state === "flapping") {
      return ["warn", ev.node + " keeps going up and down (flapping)."];
    }
    let text = ev.node + " is online";
    if (ev.interval_s !== null) text += " · reports every " + num(ev.interval_s, 1) + " s";
    if (ev.fast.requested && ev.interval_s !== null && ev.interval_s > ev.fast.interval_s) {
      text += " · asked for " + num(ev.fast.interval_s, 1) + "-s reports…";
    } else if (!ev.fast.requested) {
      text += " · live mode unavailable (no broker)";
    }
    return ["online", text];
  }

  function renderStatus(ev) {
    const [kind, text] = statusText(ev);
    els.status.textContent = text;
    els.status.className = "status status-" + kind;
    renderHeard();
  }

  function renderHeard() {
    const ev = state.last;
    if (!ev) return;
    els.heard.textContent = ev.age_s === null
      ? (ev.known ? "" : "Last heard: never")
      : "Last heard " + ago(ev.age_s + elapsed());
  }

  // ------------------------------------------------------------------ link cards
  function linkKey(link) {
    return link.peer + "|" + link.kind + "|" + (link.iface || "");
  }

  function peerName(link) {
    return link.peer_name || link.peer;
  }

  const ROWS = [
    ["Signal", (v) => withUnit(v.signal_dbm, "dBm")],
    ["Average", (v) => withUnit(v.signal_avg_dbm, "dBm")],
    ["Chains", (v) => (v.chains_dbm ? v.chains_dbm.map((c) => num(c)).join(" / ") + " dBm" : "–")],
    ["SNR", (v) => withUnit(v.snr_db, "dB") + (v.derived && v.derived.includes("snr_db") ? "*" : "")],
    ["Noise", (v) => withUnit(v.noise_dbm, "dBm")],
    ["TX rate", (v) => withUnit(v.tx_rate_mbps, "Mb/s", 1)],
    ["RX rate", (v) => withUnit(v.rx_rate_mbps, "Mb/s", 1)],
    ["Expected", (v) => withUnit(v.expected_tput_mbps, "Mb/s", 1)],
    ["TQ", (v) => (v.tq === undefined ? "–" : v.tq + " / 255")],
    ["ETX", (v) => (v.etx === undefined ? "–" : num(v.etx, 2))],
    ["Inactive", (v) => withUnit(v.inactive_ms, "ms")],
    ["Updated", (v) => ago(v.age_s)],
  ];

  const METRIC_ROW = { signal: 0, tq: 8, etx: 9 };

  // how the figure, the hold line and the chart show each metric
  const METRIC = {
    signal: { unit: "dBm", digits: 0, figureUnit: "dBm", label: "signal" },
    tq: { unit: "TQ", digits: 0, figureUnit: "TQ / 255", label: "batman TQ (0–255)" },
    etx: { unit: "ETX", digits: 2, figureUnit: "ETX", label: "ETX (1 is perfect)" },
  };

  // one end's reading as it graded the link: signal, else TQ, else ETX
  function endReading(v) {
    if (!v) return "no report";
    const signal = v.signal_dbm ?? v.signal_avg_dbm;
    if (signal !== undefined && signal !== null) return num(signal) + " dBm";
    if (v.tq !== undefined && v.tq !== null) return "TQ " + v.tq;
    if (v.etx !== undefined && v.etx !== null) return "ETX " + num(v.etx, 2);
    return "no reading";
  }

  function makeEnd(cls) {
    const box = el("div", "end " + cls);
    const who = el("span", "who");
    const grade = el("span", "grade");
    const value = el("span", "value");
    box.append(who, grade, value);
    return { box, who, grade, value };
  }

  function makeCard(link) {
    const card = el("section", "link");
    const head = el("div", "link-head");
    const title = el("h2", "peer");
    const kind = el("span", "kind");
    head.append(title, kind);
    const ident = el("div", "peer-id");
    const peerId = el("span", "id");
    const peerView = el("a", "peer-view", "its installer view");
    ident.append(peerId, peerView);
    const verdict = el("div", "verdict", "…");
    const big = el("div", "big");
    const figure = el("span", "figure", "–");
    const unit = el("span", "unit", "dBm");
    big.append(figure, unit);
    const from = el("div", "from");
    const ends = el("div", "ends");
    const endOut = makeEnd("end-out");
    const endIn = makeEnd("end-in");
    ends.append(endOut.box, endIn.box);
    const decides = el("p", "decides");
    const hold = el("div", "hold");
    const planned = el("div", "planned");
    const canvas = el("canvas", "spark");
    canvas.height = 90;
    const legend = el("div", "spark-legend");
    const table = el("table", "views");
    const thead = el("thead");
    const hrow = el("tr");
    const hereTh = el("th");
    const outTh = el("th", "", "Here hears");
    const inTh = el("th", "", peerName(link) + " hears");
    hrow.append(hereTh, outTh, inTh);
    thead.append(hrow);
    const tbody = el("tbody");
    const cells = ROWS.map(([label]) => {
      const tr = el("tr");
      const out = el("td", "out");
      const back = el("td", "in");
      tr.append(el("th", "", label), out, back);
      tbody.append(tr);
      return [tr, out, back];
    });
    table.append(thead, tbody);
    card.append(head, ident, verdict, big, from, ends, decides, hold, planned, canvas, legend,
      table);
    els.links.append(card);
    return {
      card, title, kind, peerId, peerView, verdict, figure, unit, from, endOut, endIn, decides,
      hold, planned, canvas, legend, cells, outTh, inTh,
      metric: null, min: null, max: null, history: [],
    };
  }

  function updateEnd(end, who, grade, view) {
    end.box.className = end.box.className.replace(/ verdict-\S+/g, "") + " verdict-" + grade;
    end.who.textContent = who + " hears";
    end.grade.textContent = grade === "unknown" ? "–" : grade;
    end.value.textContent = endReading(view);
  }

  function decidesText(link, ev) {
    const here = ev.node;
    const there = peerName(link);
    if (link.verdict_by === null) return "Neither end reports a signal, TQ or ETX.";
    const out = link.verdict_out;
    const back = link.verdict_in;
    if (out !== "unknown" && back !== "unknown") {
      if (out === back) return "Both ends agree: " + out + ".";
      const [who, whom] = link.verdict_by === "in" ? [there, here] : [here, there];
      return "The worse end decides: " + who + " hears " + whom + " as " + link.verdict + ".";
    }
    const only = link.verdict_by === "in" ? there : here;
    return "Only " + only + "'s end reports a reading; it decides.";
  }

  function updateCard(c, link, ev) {
    const name = peerName(link);
    c.title.textContent = name;
    c.peerId.textContent = link.peer_name && link.peer_name !== link.peer ? link.peer + " · " : "";
    c.peerView.href = "/install/" + encodeURIComponent(link.peer);
    c.kind.textContent = link.kind + (link.iface ? " · " + link.iface : "");
    c.card.className = "link verdict-" + link.verdict;
    c.card.dataset.peer = link.peer;
    c.card.dataset.metric = link.metric || "none";
    c.verdict.textContent = link.verdict;
    if (c.metric !== link.metric) {
      // another scale: the old points and the hold mean something else
      c.metric = link.metric;
      c.history = [];
      c.min = c.max = null;
    }
    const m = METRIC[link.metric];
    const value = link.value;
    if (m && value !== null && value !== undefined) {
      c.figure.textContent = num(value, m.digits);
      c.unit.textContent = m.figureUnit;
      c.min = c.min === null ? value : Math.min(c.min, value);
      c.max = c.max === null ? value : Math.max(c.max, value);
      c.from.textContent = link.value_from === "in"
        ? "as " + name + " hears " + ev.node + " (no reading here)"
        : "as " + ev.node + " hears " + name;
    } else {
      c.figure.textContent = "–";
      c.unit.textContent = "no reading";
      c.from.textContent = "";
    }
    updateEnd(c.endOut, ev.node, link.verdict_out, link.out);
    updateEnd(c.endIn, name, link.verdict_in, link.in);
    c.endOut.box.classList.toggle("decider", link.verdict_by === "out");
    c.endIn.box.classList.toggle("decider", link.verdict_by === "in");
    c.decides.textContent = decidesText(link, ev);
    c.hold.textContent = c.min === null || !m ? "" : "min " + num(c.min, m.digits) + " · peak " +
      num(c.max, m.digits) + " " + m.unit;
    c.hold.title = "lowest and highest since the page opened (Reset min/peak to start over)";
    if (link.planned_signal_dbm !== null) {
      c.planned.textContent = "planned " + num(link.planned_signal_dbm) + " dBm · " +
        (link.planned_diff_db === null ? "–" : signed(link.planned_diff_db) + " dB");
      c.planned.className = "planned " + (link.planned_diff_db !== null &&
        link.planned_diff_db < 0 ? "below" : "above");
      c.planned.hidden = false;
    } else {
      c.planned.hidden = true;
    }
    c.outTh.textContent = ev.node + " hears";
    c.inTh.textContent = name + " hears";
    c.canvas.hidden = !m;
    c.legend.hidden = !m;
    if (m) {
      c.canvas.setAttribute("aria-label", m.label + " over the last minutes, both ends");
      c.legend.textContent = "━ " + ev.node + " hears   ╍ " + name + " hears" +
        (link.metric === "signal" && link.planned_signal_dbm !== null ? "   ┈ planned" : "") +
        (yesterdayOn ? "   ━ yesterday (grey)" : "") +
        "   (" + m.label + ", last " + Math.round(SPARK_WINDOW_S / 60) + " min)";
    }
    const stale = (v) => v && ev.interval_s !== null &&
      v.age_s !== null && v.age_s > Math.max(10, 3 * ev.interval_s);
    ROWS.forEach(([, fmt], i) => {
      const [, out, back] = c.cells[i];
      out.textContent = link.out ? fmt(link.out) : "–";
      back.textContent = link.in ? fmt(link.in) : "–";
      out.classList.toggle("stale", Boolean(stale(link.out)));
    });
    // hide rows that neither end reports
    ROWS.forEach((_, i) => {
      const [tr, out, back] = c.cells[i];
      tr.hidden = out.textContent === "–" && back.textContent === "–";
    });
    // the row of the card's metric always shows, saying so when an end sends nothing
    const main = c.cells[METRIC_ROW[link.metric] ?? 0];
    main[0].hidden = false;
    if (!link.in) main[2].textContent = "no report";
    if (!link.out) main[1].textContent = "no report";
    const t = Date.now() / 1000;
    c.history.push([t, reading(link.out, link.metric), reading(link.in, link.metric)]);
    while (c.history.length && c.history[0][0] < t - SPARK_WINDOW_S) c.history.shift();
    if (m) drawSpark(c, link, ev);
  }

  function reading(v, metric) {
    if (!v || !metric) return null;
    if (metric === "signal") return v.signal_dbm ?? v.signal_avg_dbm ?? null;
    return v[metric] ?? null;
  }

  // The chart's scale: better is up for every metric (ETX is drawn upside down).
  function scaleFor(metric, thresholds, values, planned) {
    if (metric === "tq") {
      return { lo: 0, hi: 255, up: 1, good: thresholds.tq[0], fair: thresholds.tq[1], digits: 0 };
    }
    if (metric === "etx") {
      const worst = Math.max(thresholds.etx[1] + 1, ...values);
      return { lo: 1, hi: Math.ceil(worst + 0.5), up: -1, good: thresholds.etx[0],
        fair: thresholds.etx[1], digits: 0 };
    }
    const good = thresholds.signal_dbm[0];
    const fair = thresholds.signal_dbm[1];
    const all = planned === null ? values : values.concat([planned]);
    // 3 dB of air around the lines, so the latest reading never sits on an edge
    return {
      lo: Math.floor((Math.min(fair - 10, ...all) - 3) / 5) * 5,
      hi: Math.ceil((Math.max(good + 10, ...all) + 3) / 5) * 5,
      up: 1, good, fair, digits: 0,
    };
  }

  function drawSpark(c, link, ev) {
    const canvas = c.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(100, canvas.clientWidth || 300);
    const height = 90;
    if (canvas.width !== Math.round(width * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const g = canvas.getContext("2d");
    if (!g) return;
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const values = [];
    c.history.forEach(([, a, b]) => {
      if (a !== null) values.push(a);
      if (b !== null) values.push(b);
    });
    const planned = link.metric === "signal" ? link.planned_signal_dbm : null;
    const s = scaleFor(link.metric, ev.thresholds, values, planned);
    canvas.dataset.lo = String(s.lo);
    canvas.dataset.hi = String(s.hi);
    const y = (v) => {
      const f = (v - s.lo) / (s.hi - s.lo);
      return s.up > 0 ? height - f * height : f * height;
    };
    // the verdict zones behind the lines: good at the top, poor at the bottom
    g.fillStyle = "#d9f2df";
    g.fillRect(0, 0, width, y(s.good));
    g.fillStyle = "#fff1c2";
    g.fillRect(0, y(s.good), width, y(s.fair) - y(s.good));
    g.fillStyle = "#fbd9dc";
    g.fillRect(0, y(s.fair), width, height - y(s.fair));
    // the time axis grows with the page's age up to SPARK_WINDOW_S, then scrolls
    const now = Date.now() / 1000;
    const first = c.history.length ? c.history[0][0] : now;
    // (the whole window while yesterday is overlaid: its readings span all of it)
    const span = yesterdayOn ? SPARK_WINDOW_S
      : Math.min(SPARK_WINDOW_S, Math.max(30, now - first));
    const x = (t) => width - 6 - ((now - t) / span) * (width - 6);
    drawYesterday(c, g, x, y, now - span);
    if (planned !== null) {
      g.setLineDash([2, 4]);
      g.strokeStyle = "#333";
      g.lineWidth = 1.5;
      g.beginPath();
      g.moveTo(0, y(planned));
      g.lineTo(width, y(planned));
      g.stroke();
    }
    const line = (index, colour, widthPx, dash) => {
      g.setLineDash(dash);
      g.strokeStyle = colour;
      g.lineWidth = widthPx;
      g.beginPath();
      let started = false;
      c.history.forEach((sample) => {
        const v = sample[index];
        if (v === null) { started = false; return; }
        if (started) g.lineTo(x(sample[0]), y(v));
        else { g.moveTo(x(sample[0]), y(v)); started = true; }
      });
      g.stroke();
      const latest = c.history[c.history.length - 1];
      if (latest && latest[index] !== null) {
        g.setLineDash([]);
        g.fillStyle = colour;
        g.beginPath();
        g.arc(x(latest[0]), y(latest[index]), 4, 0, 2 * Math.PI);
        g.fill();
      }
    };
    line(2, "#0645ad", 2, [6, 4]);
    line(1, "#000", 3, []);
    g.setLineDash([]);
    g.fillStyle = "#000";
    g.font = "12px system-ui, sans-serif";
    const unit = METRIC[link.metric].unit;
    const top = s.up > 0 ? s.hi : s.lo;
    const bottom = s.up > 0 ? s.lo : s.hi;
    g.fillText(num(top, s.digits) + " " + unit, 4, 13);
    g.fillText(num(bottom, s.digits) + " " + unit, 4, height - 4);
  }

  // ------------------------------------------------------------------ same time yesterday
  // This end's readings of the card's metric a day ago (the history API), shifted by a
  // day and drawn grey under the live lines: "is it better than yesterday?"
  const DAY_S = 86400;
  const YESTERDAY_METRIC = { signal: "signal_dbm", tq: "tq", etx: "etx" };
  let yesterdayOn = false;

  async function loadYesterday(c, link, here) {
    const metric = YESTERDAY_METRIC[link.metric];
    if (!metric) return;
    const now = Date.now() / 1000;
    const q = new URLSearchParams({
      from: String(Math.floor(now - DAY_S - SPARK_WINDOW_S)),
      to: String(Math.ceil(now - DAY_S + 120)), step: "raw", metrics: metric, stats: "mean",
    });
    c.yesterdayAt = now;
    try {
      const r = await fetch("/api/v1/links/" + encodeURIComponent(here) + "/" +
        encodeURIComponent(link.peer) + "/history?" + q);
      if (!r.ok) return;
      const doc = await r.json();
      const mine = doc.series.filter((s) => s.node === here && s.link_kind === link.kind);
      const s = mine.find((x) => x.iface === link.iface) || mine[0];
      c.yesterday = s ? s.t.map((t, i) => [t + DAY_S, s.mean[i]]) : [];
    } catch (_e) {
      c.yesterday = [];
    }
    c.canvas.dataset.yesterday = String(c.yesterday.length);
  }

  function drawYesterday(c, g, x, y, from) {
    if (!yesterdayOn || !c.yesterday) return;
    const shown = c.yesterday.filter(([t]) => t >= from - 60);
    g.setLineDash([]);
    g.strokeStyle = "#8a8f98";
    g.fillStyle = "#8a8f98";
    g.lineWidth = 2;
    g.beginPath();
    shown.forEach(([t, v], i) => (i ? g.lineTo(x(t), y(v)) : g.moveTo(x(t), y(v))));
    g.stroke();
    shown.forEach(([t, v]) => {
      g.beginPath();
      g.arc(x(t), y(v), 2.5, 0, 2 * Math.PI);
      g.fill();
    });
  }

  function refreshYesterday(ev) {
    if (!yesterdayOn) return;
    const now = Date.now() / 1000;
    for (const link of ev.links) {
      const c = cards.get(linkKey(link));
      if (c && (!c.yesterdayAt || now - c.yesterdayAt > 60)) loadYesterday(c, link, ev.node);
    }
  }

  if (els.yesterday) {
    els.yesterday.addEventListener("click", () => {
      yesterdayOn = !yesterdayOn;
      els.yesterday.setAttribute("aria-pressed", String(yesterdayOn));
      for (const c of cards.values()) c.yesterdayAt = 0;
      if (state.last) refreshYesterday(state.last);
    });
  }

  function renderLinks(ev) {
    const seen = new Set();
    const verdicts = {};
    ev.links.forEach((link) => {
      const key = linkKey(link);
      seen.add(key);
      let c = cards.get(key);
      if (!c) {
        c = makeCard(link);
        cards.set(key, c);
      }
      updateCard(c, link, ev);
      const before = verdicts[link.peer];
      if (before === undefined || RANK[link.verdict] > RANK[before]) {
        verdicts[link.peer] = link.verdict;
      }
    });
    for (const [key, c] of cards) {
      if (!seen.has(key)) {
        c.card.remove();
        cards.delete(key);
      }
    }
    // keep the DOM in the event's order (radio links first, each group worst first)
    ev.links.forEach((link) => els.links.append(cards.get(linkKey(link)).card));
    state.verdicts = verdicts;
    if (ev.unresolved_links > 0) {
      els.unresolved.hidden = false;
      els.unresolved.textContent = ev.unresolved_links + " more neighbour link" +
        (ev.unresolved_links === 1 ? "" : "s") + " to routers that do not run meshmon " +
        "(not shown).";
    } else {
      els.unresolved.hidden = true;
    }
    if (ev.known && ev.links.length === 0 && ev.reported) {
      els.links.replaceChildren(el("p", "note empty", "No neighbours reported yet."));
      cards.clear();
    } else {
      const empty = els.links.querySelector(".empty");
      if (empty) empty.remove();
    }
  }

  // ------------------------------------------------------------------ audio
  const tone = { ctx: null, osc: null, gain: null, on: false };

  function bestSignal() {
    const ev = state.last;
    if (!ev) return null;
    let best = null;
    ev.links.forEach((l) => {
      if (l.signal_dbm !== null && (best === null || l.signal_dbm > best)) best = l.signal_dbm;
    });
    return best;
  }

  function updateTone() {
    if (!tone.on || !tone.ctx) return;
    const signal = bestSignal();
    const t = tone.ctx.currentTime;
    if (signal === null) {
      tone.gain.gain.setTargetAtTime(0, t, 0.05);
      return;
    }
    // -95 dBm → 220 Hz … -30 dBm → 1320 Hz: higher is better
    const f = 220 + (Math.min(-30, Math.max(-95, signal)) + 95) / 65 * 1100;
    tone.osc.frequency.setTargetAtTime(f, t, 0.1);
    tone.gain.gain.setTargetAtTime(0.08, t, 0.05);
  }

  els.tone.addEventListener("click", () => {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) {
      els.tone.textContent = "No audio here";
      return;
    }
    if (!tone.ctx) {
      tone.ctx = new Ctx();
      tone.osc = tone.ctx.createOscillator();
      tone.gain = tone.ctx.createGain();
      tone.osc.type = "sine";
      tone.gain.gain.value = 0;
      tone.osc.connect(tone.gain).connect(tone.ctx.destination);
      tone.osc.start();
    }
    tone.on = !tone.on;
    els.tone.setAttribute("aria-pressed", String(tone.on));
    els.tone.textContent = tone.on ? "Tone on" : "Tone off";
    if (tone.on) {
      tone.ctx.resume().catch(() => {});
      updateTone();
    } else {
      tone.gain.gain.setTargetAtTime(0, tone.ctx.currentTime, 0.05);
    }
  });

  els.reset.addEventListener("click", () => {
    for (const c of cards.values()) {
      c.min = c.max = null;
      c.hold.textContent = "";
    }
  });

  // ------------------------------------------------------------------ screen awake
  async function keepAwake() {
    try {
      if ("wakeLock" in navigator && document.visibilityState === "visible") {
        await navigator.wakeLock.request("screen");
      }
    } catch (_e) {
      // not allowed here (no HTTPS, battery saver): the screen may dim; nothing to do
    }
  }
  document.addEventListener("visibilitychange", keepAwake);
  keepAwake();

  // ------------------------------------------------------------------ the stream
  function apply(ev) {
    receivedAt = performance.now();
    state.last = ev;
    renderStatus(ev);
    renderLinks(ev);
    refreshYesterday(ev);
    updateTone();
    state.updates += 1;
  }

  function connect() {
    source = new EventSource("/api/v1/live/" + encodeURIComponent(node));
    source.onopen = () => {
      els.connection.textContent = "Live: connected";
      els.connection.className = "note live";
    };
    source.onmessage = (msg) => {
      let ev;
      try {
        ev = JSON.parse(msg.data);
      } catch (_e) {
        return;
      }
      apply(ev);
    };
    source.onerror = () => {
      els.connection.textContent = "Connection lost: reconnecting…";
      els.connection.className = "note lost";
      // EventSource retries by itself unless the server refused; then start afresh
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(connect, RECONNECT_MS);
      }
    };
  }

  setInterval(renderHeard, 1000);
  connect();
})();
