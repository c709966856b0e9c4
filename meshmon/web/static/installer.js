// The installer view: one node's links, live, for a phone on a roof.
// Reads /api/v1/live/NODE (Server-Sent Events; see meshmon/web/installer.py for the event).
// Test contract: window.meshmonInstaller = {updates, verdicts: {peer: verdict}, last}.
"use strict";

(function () {
  const body = document.body;
  const node = body.dataset.node;
  const SPARK_WINDOW_S = 300;
  const RECONNECT_MS = 5000;
  const RANK = { good: 3, marginal: 2, poor: 1, unknown: 0 };

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
      return ["offline", ev.node + " has gone silent: reports stopped arriving."];
    }
    if (ev.state === "unreachable") {
      return ["offline", ev.node + " reports, but has no path to a gateway."];
    }
    if (ev.state === "flapping") {
      return ["marginal", ev.node + " keeps going up and down (flapping)."];
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

  function makeCard(link) {
    const card = el("section", "link");
    const head = el("div", "link-head");
    const title = el("h2", "peer", link.peer);
    const kind = el("span", "kind");
    head.append(title, kind);
    const verdict = el("div", "verdict", "…");
    const big = el("div", "big");
    const figure = el("span", "figure", "–");
    const unit = el("span", "unit", "dBm");
    big.append(figure, unit);
    const from = el("div", "from");
    const hold = el("div", "hold");
    const planned = el("div", "planned");
    const canvas = el("canvas", "spark");
    canvas.setAttribute("aria-label", "signal over the last minutes");
    canvas.height = 90;
    const legend = el("div", "spark-legend");
    const table = el("table", "views");
    const thead = el("thead");
    const hrow = el("tr");
    const hereTh = el("th");
    const outTh = el("th", "", "Here hears");
    const inTh = el("th", "", link.peer + " hears");
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
    card.append(head, verdict, big, from, hold, planned, canvas, legend, table);
    els.links.append(card);
    return {
      card, kind, verdict, figure, unit, from, hold, planned, canvas, legend, cells, outTh,
      min: null, max: null, history: [],
    };
  }

  function updateCard(c, link, ev) {
    c.kind.textContent = link.kind + (link.iface ? " · " + link.iface : "");
    c.card.className = "link verdict-" + link.verdict;
    c.card.dataset.peer = link.peer;
    c.verdict.textContent = link.verdict;
    const signal = link.signal_dbm;
    if (signal !== null) {
      c.figure.textContent = num(signal);
      c.unit.textContent = "dBm";
      c.min = c.min === null ? signal : Math.min(c.min, signal);
      c.max = c.max === null ? signal : Math.max(c.max, signal);
      c.from.textContent = link.signal_from === "in"
        ? "as " + link.peer + " hears " + ev.node + " (no reading here)"
        : "as " + ev.node + " hears " + link.peer;
    } else {
      const tq = (link.out && link.out.tq) ?? (link.in && link.in.tq);
      c.figure.textContent = tq === undefined || tq === null ? "–" : String(tq);
      c.unit.textContent = tq === undefined || tq === null ? "no signal reading" : "TQ / 255";
      c.from.textContent = "";
    }
    c.hold.textContent = c.min === null ? "" : "min " + num(c.min) + " · peak " + num(c.max) +
      " dBm";
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
    c.legend.textContent = "━ " + ev.node + " hears   ╍ " + link.peer + " hears" +
      (link.planned_signal_dbm !== null ? "   ┈ planned" : "") + "   (last " +
      Math.round(SPARK_WINDOW_S / 60) + " min)";
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
    // the signal row always shows, saying so when the other end sends nothing
    c.cells[0][0].hidden = false;
    if (!link.in) c.cells[0][2].textContent = "no report";
    if (!link.out) c.cells[0][1].textContent = "no report";
    const t = Date.now() / 1000;
    c.history.push([t, view(link.out), view(link.in)]);
    while (c.history.length && c.history[0][0] < t - SPARK_WINDOW_S) c.history.shift();
    drawSpark(c, link, ev);
  }

  function view(v) {
    if (!v) return null;
    return v.signal_dbm ?? v.signal_avg_dbm ?? null;
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
    const good = ev.thresholds.good_signal_dbm;
    const marginal = ev.thresholds.marginal_signal_dbm;
    const values = [];
    c.history.forEach(([, a, b]) => {
      if (a !== null) values.push(a);
      if (b !== null) values.push(b);
    });
    if (link.planned_signal_dbm !== null) values.push(link.planned_signal_dbm);
    // 3 dB of air around the lines, so the latest reading never sits on an edge
    const lo = Math.floor((Math.min(marginal - 10, ...values) - 3) / 5) * 5;
    const hi = Math.ceil((Math.max(good + 10, ...values) + 3) / 5) * 5;
    const y = (dbm) => height - ((dbm - lo) / (hi - lo)) * height;
    // the verdict zones behind the lines
    g.fillStyle = "#d9f2df";
    g.fillRect(0, 0, width, y(good));
    g.fillStyle = "#fff1c2";
    g.fillRect(0, y(good), width, y(marginal) - y(good));
    g.fillStyle = "#fbd9dc";
    g.fillRect(0, y(marginal), width, height - y(marginal));
    // the time axis grows with the page's age up to SPARK_WINDOW_S, then scrolls
    const now = Date.now() / 1000;
    const first = c.history.length ? c.history[0][0] : now;
    const span = Math.min(SPARK_WINDOW_S, Math.max(30, now - first));
    const x = (t) => width - 6 - ((now - t) / span) * (width - 6);
    if (link.planned_signal_dbm !== null) {
      g.setLineDash([2, 4]);
      g.strokeStyle = "#333";
      g.lineWidth = 1.5;
      g.beginPath();
      g.moveTo(0, y(link.planned_signal_dbm));
      g.lineTo(width, y(link.planned_signal_dbm));
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
    g.fillText(hi + " dBm", 4, 13);
    g.fillText(lo + " dBm", 4, height - 4);
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
    // keep the DOM in the event's order (radio links first, each group by peer)
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
