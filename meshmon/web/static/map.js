// The public coverage map at `/`: Leaflet on canvas, fed by /api/v1/map and updated in
// place every `refresh_s`. Plain ES2020, no build step.
//
// Contract for tests and bench/web.py: after the first full render (data applied, view
// fitted, canvas painted) `document.body.dataset.ready = "1"` and `window.meshmonMap` is
// {markers, links, renderedAt, updates, updatedAt, stateOf(id), open(id), pointOf(id),
// latLngOf(id), selected(), zoom(z?) (sets the zoom without animation, gives it)};
// markers/links/updates/updatedAt follow every live refresh, renderedAt stays the time
// of the first render.
//
// `/#node=ID` names the open node: opening one pushes that URL (back and forward step
// through the nodes opened), and a page opened with it opens the node's details.
"use strict";

(() => {
  const CFG = JSON.parse(document.getElementById("map-config").textContent);
  const CSS = getComputedStyle(document.documentElement);
  // colours live in palette.css (custom properties) so the legend and the canvas agree
  const colour = (name) => CSS.getPropertyValue(`--${name}`).trim() || "#888";
  const narrow = window.matchMedia("(max-width: 640px)");
  // node states, most worrying first (meshmon/web/states.py): the word shown for each,
  // and how high a dot is stacked (a failed node is never hidden under a healthy one)
  const WORD = new Map(CFG.states);
  const STACK = new Map(CFG.states.map(([state], i) => [state, CFG.states.length - 1 - i]));
  const word = (state) => WORD.get(state) || state;
  const Word = (state) => word(state).replace(/^./, (c) => c.toUpperCase());

  const summaryEl = document.getElementById("summary");
  const panel = document.getElementById("details");
  const panelBody = panel.querySelector(".details-body");
  const banner = document.getElementById("outages");
  const search = document.getElementById("search");
  const results = document.getElementById("search-results");

  const nodes = new Map(); // id → node JSON of the latest /api/v1/map (drawn)
  const hidden = new Map(); // id → its unlocated_nodes entry (not drawn: no public location)
  const known = (id) => nodes.get(id) || hidden.get(id);
  const markers = new Map(); // id → {layer, key (style drawn), name, rank (stacking)}
  const lines = new Map(); // "a b" → {layer, key (style drawn), where (ends drawn)}
  const coverage = new Map(); // id → {layer, key}
  let causes = new Set(); // nodes named as the cause of an open outage
  let outages = []; // the open outages of the latest /api/v1/outages, by impact
  let bannerOpen = false; // the whole outage list shown, not only the first entries
  let bannerKey = ""; // what the banner shows, so that an unchanged list is not redrawn
  let restack = false; // a dot changed its stacking rank or was added: stack again
  let selected = null;
  let alertingMissing = false;
  let api = null; // window.meshmonMap once the first render is done
  let lastLinks = []; // links of the latest /api/v1/map, restyled when the zoom scale changes
  let fitted = false; // the first data sets the view; later refreshes leave it to the user
  let busy = false; // one refresh at a time, so that an older answer never wins
  // Dots and lines are drawn smaller when zoomed out, where a whole city's nodes share
  // a few hundred pixels: 0 = overview, 1 = district, 2 = streets.
  let scale = 2;
  const scaleAt = (zoom) => (zoom >= 15 ? 2 : zoom >= 13 ? 1 : 0);

  // ------------------------------------------------------------------ the map
  // Leaflet's canvas strokes every path on its own, setting the whole context state each
  // time; with thousands of links that dominates every redraw after a pan or zoom. This
  // renderer strokes all lines of one style as a single path. It overrides `_draw`, an
  // internal of the vendored Leaflet 1.9.4 (same clipping to the redraw bounds), and
  // suits only non-interactive polylines.
  const BatchedLines = L.Canvas.extend({
    _draw() {
      const ctx = this._ctx, bounds = this._redrawBounds, groups = new Map();
      for (let o = this._drawFirst; o; o = o.next) {
        const line = o.layer, s = line.options;
        if (!line._parts || !line._parts.length) continue; // clipped away
        if (bounds && !(line._pxBounds && line._pxBounds.intersects(bounds))) continue;
        const key = `${s.color}|${s.weight}|${s.opacity}|${s.dashArray || ""}`;
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(line);
      }
      ctx.save();
      if (bounds) {
        const size = bounds.getSize();
        ctx.beginPath();
        ctx.rect(bounds.min.x, bounds.min.y, size.x, size.y);
        ctx.clip();
      }
      for (const lines of groups.values()) strokeAll(ctx, lines);
      ctx.restore();
    },
  });

  function strokeAll(ctx, lines) {
    const s = lines[0].options;
    ctx.beginPath();
    for (const line of lines) {
      for (const part of line._parts) {
        ctx.moveTo(part[0].x, part[0].y);
        for (let i = 1; i < part.length; i++) ctx.lineTo(part[i].x, part[i].y);
      }
    }
    ctx.setLineDash(s.dashArray ? s.dashArray.split(/[ ,]+/).map(Number) : []);
    ctx.globalAlpha = s.opacity;
    ctx.lineWidth = s.weight;
    ctx.strokeStyle = s.color;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.stroke();
  }

  const map = L.map("map", {
    preferCanvas: true,
    maxZoom: CFG.max_zoom,
    worldCopyJump: true,
    zoomControl: !narrow.matches, // pinch zoom on phones; the buttons only cover the map
  });
  // one canvas per layer kind, stacked: coverage under links under nodes; a larger
  // hit tolerance makes small dots tappable with a finger
  const renderers = {};
  for (const [name, z] of [["coverage", 380], ["links", 410], ["nodes", 420]]) {
    map.createPane(name).style.zIndex = String(z);
    const Kind = name === "links" ? BatchedLines : L.Canvas;
    renderers[name] = new Kind({ pane: name, tolerance: name === "nodes" ? 6 : 0 });
  }
  if (CFG.tile_url) {
    L.tileLayer(CFG.tile_url, { attribution: CFG.attribution, maxZoom: CFG.max_zoom }).addTo(map);
  }
  const linkLayer = L.layerGroup().addTo(map);
  const nodeLayer = L.layerGroup().addTo(map);
  const coverageLayer = L.layerGroup();
  L.control
    .layers(null, { Links: linkLayer, Coverage: coverageLayer }, { collapsed: narrow.matches })
    .addTo(map);
  map.on("overlayadd", (e) => { if (e.layer === coverageLayer) drawCoverage(); });
  map.on("click", () => closePanel());
  map.on("zoomend", () => {
    if (scaleAt(map.getZoom()) === scale) return;
    scale = scaleAt(map.getZoom());
    syncNodes();
    syncLinks(lastLinks);
  });
  // the banner and the header wrap change the map's height; Leaflet only watches the window
  new ResizeObserver(() => map.invalidateSize({ pan: false })).observe(map.getContainer());

  // ------------------------------------------------------------------ styles
  function nodeKey(n) {
    return [n.state, !!n.gateway, !!n.approximate, n.id === selected, causes.has(n.id), scale]
      .join("|");
  }

  // how high a node's dot is stacked: healthy 0, then by concern, causes of outages top
  function rankOf(n) {
    return causes.has(n.id) ? CFG.states.length : STACK.get(n.state) ?? 0;
  }

  function nodeStyle(n) {
    const chosen = n.id === selected;
    const ring = causes.has(n.id) ? colour("cause") : n.gateway ? colour("gateway") : "#fff";
    // a node with a problem is a little larger: visible among healthy ones when zoomed out
    const problem = rankOf(n) > 0 ? 1 : 0;
    return {
      renderer: renderers.nodes,
      pane: "nodes",
      radius: [3.5, 4.5, 5.5][scale] + problem + (n.gateway ? 2 : 0) + (chosen ? 3 : 0),
      color: chosen ? "#111" : n.state === "unmonitored" && ring === "#fff" ? "#333" : ring,
      weight: n.gateway || causes.has(n.id) || chosen ? [2, 2.5, 3][scale] : [1, 1.5, 1.5][scale],
      // unmonitored (its bridge is silent): what we show is as last heard, ringed dashed
      dashArray: n.state === "unmonitored" ? "2 2" : null,
      fillColor: colour(n.state),
      // an approximate (private) node is paler: its dot is a grid cell, not a roof
      fillOpacity: n.approximate ? 0.5 : 0.95,
      bubblingMouseEvents: false, // a click on a node must not also close the panel
    };
  }

  // line width grows with the log of expected throughput: 10 Mbit/s and 300 Mbit/s
  // should both be visible, neither should hide the nodes
  function linkWeight(tput) {
    // rounded to half pixels so that lines share a style (and a stroke, see BatchedLines)
    const w = tput == null ? 2 : Math.min(8, 1.5 + 1.3 * Math.log2(1 + tput / 10));
    return Math.round(w * 2) / 2;
  }

  function linkKey(l) {
    return [l.quality, l.tput_mbps, l.kind, isUp(l.a) && isUp(l.b), scale].join("|");
  }

  function isUp(id) {
    const n = nodes.get(id);
    return !!n && n.state !== "offline" && n.state !== "unmonitored";
  }

  function linkStyle(l) {
    return {
      renderer: renderers.links,
      pane: "links",
      color: colour(`q-${l.quality}`),
      weight: linkWeight(l.tput_mbps) * [0.6, 0.8, 1][scale],
      // a link to a node that is down is still known (it ages out later): drawn faint
      opacity: isUp(l.a) && isUp(l.b) ? 0.85 : 0.25,
      dashArray: l.kind === "vpn" ? "5 6" : null,
      interactive: false,
    };
  }

  // ------------------------------------------------------------------ applying data
  function apply(doc) {
    syncNodes();
    lastLinks = doc.links;
    syncLinks(doc.links);
    if (map.hasLayer(coverageLayer)) drawCoverage();
    const s = doc.summary;
    const line = `${s.online} of ${s.total} nodes online, ${s.links} links`
      + (s.unmonitored ? `, ${s.unmonitored} unmonitored` : "");
    // only on a change: the line is aria-live, and a screen reader repeats every write
    if (summaryEl.textContent !== line) summaryEl.textContent = line;
    const note = document.getElementById("unlocated");
    if (note) note.textContent = notDrawn(doc.unlocated, s.links - lines.size);
  }

  // what the map cannot draw, so that the counts in the header add up
  function notDrawn(unlocated, links) {
    const parts = [];
    if (unlocated) {
      parts.push(`${unlocated} node${unlocated === 1 ? "" : "s"} without a public location `
        + "not drawn: find them by search or in the node list.");
    }
    if (links > 0) {
      parts.push(`${links} of the links not drawn: an end has no public location.`);
    }
    return parts.join(" ");
  }

  function syncNodes() {
    for (const [id, m] of markers) {
      if (!nodes.has(id)) { nodeLayer.removeLayer(m.layer); markers.delete(id); }
    }
    for (const n of nodes.values()) {
      const m = markers.get(n.id);
      if (!m) { markers.set(n.id, newMarker(n)); restack = true; continue; }
      const ll = m.layer.getLatLng();
      if (ll.lat !== n.lat || ll.lng !== n.lon) m.layer.setLatLng([n.lat, n.lon]);
      const key = nodeKey(n);
      if (key !== m.key) restyleMarker(n, m);
      if (m.name !== n.name) { m.layer.setTooltipContent(tooltipOf(n)); m.name = n.name; }
    }
    stack();
  }

  // Leaflet's canvas paints (and hit-tests) dots in the order they were added, or last
  // brought to front: dots with a problem go on top of the healthy ones, by concern, and
  // the open node on top of all. Only after a dot was added or changed its rank.
  function stack() {
    if (!restack) return;
    const raised = [...markers.values()].filter((m) => m.rank > 0);
    // dots made while the map gets its first view join the canvas only after it (on
    // Leaflet's "load"): stacked on the next call, when they are there
    if (raised.some((m) => !m.layer._map)) return;
    restack = false;
    raised.sort((a, b) => a.rank - b.rank);
    for (const m of raised) m.layer.bringToFront();
    markers.get(selected)?.layer.bringToFront();
  }

  // Leaflet puts string content into tooltips as HTML: names come from the network, so
  // a tooltip gets an element holding the name as text
  function tooltipOf(n) {
    return el("span", { text: n.name });
  }

  function newMarker(n) {
    const layer = L.circleMarker([n.lat, n.lon], nodeStyle(n));
    layer.bindTooltip(tooltipOf(n), { direction: "top", offset: [0, -6] });
    layer.on("click", () => open(n.id));
    nodeLayer.addLayer(layer);
    return { layer, key: nodeKey(n), name: n.name, rank: rankOf(n) };
  }

  function restyleMarker(n, m) {
    m.layer.setStyle(nodeStyle(n));
    m.key = nodeKey(n);
    const rank = rankOf(n);
    if (rank !== m.rank) { m.rank = rank; restack = true; }
  }

  function syncLinks(list) {
    const seen = new Set();
    for (const l of list) {
      const a = nodes.get(l.a), b = nodes.get(l.b);
      if (!a || !b) continue;
      const id = `${l.a} ${l.b}`;
      seen.add(id);
      const ends = [[a.lat, a.lon], [b.lat, b.lon]];
      const where = ends.join(",");
      const line = lines.get(id);
      if (!line) {
        const layer = L.polyline(ends, linkStyle(l));
        linkLayer.addLayer(layer);
        lines.set(id, { layer, key: linkKey(l), where });
        continue;
      }
      if (line.where !== where) { line.layer.setLatLngs(ends); line.where = where; }
      const key = linkKey(l);
      if (key !== line.key) { line.layer.setStyle(linkStyle(l)); line.key = key; }
    }
    for (const [id, line] of lines) {
      if (!seen.has(id)) { linkLayer.removeLayer(line.layer); lines.delete(id); }
    }
  }

  function restyle(id) {
    const n = nodes.get(id), m = markers.get(id);
    if (!n || !m) return;
    restyleMarker(n, m);
    restack = true; // the open node goes on top; one closed goes back among its rank
  }

  // ------------------------------------------------------------------ coverage
  // Circles of coverage_radius_m around online nodes; sector antennas as wedges of their
  // range. Built per node and only while the layer is shown, so the common case (layer
  // off) costs nothing on refresh.
  function drawCoverage() {
    for (const [id, c] of coverage) {
      const n = nodes.get(id);
      if (!n || n.state !== "online") { coverageLayer.removeLayer(c.layer); coverage.delete(id); }
    }
    for (const n of nodes.values()) {
      if (n.state !== "online") continue;
      const key = JSON.stringify([n.lat, n.lon, n.antennas || null]);
      const old = coverage.get(n.id);
      if (old && old.key === key) continue;
      if (old) coverageLayer.removeLayer(old.layer);
      const layer = coverageShape(n);
      coverageLayer.addLayer(layer);
      coverage.set(n.id, { layer, key });
    }
  }

  function coverageShape(n) {
    const style = {
      renderer: renderers.coverage, pane: "coverage", interactive: false,
      color: colour("coverage"), weight: 1, opacity: 0.5, fillOpacity: 0.18,
    };
    if (!n.antennas || !n.antennas.length) {
      return L.circle([n.lat, n.lon], { ...style, radius: CFG.coverage_radius_m });
    }
    return L.featureGroup(n.antennas.map((a) => L.polygon(wedge(n, a), style)));
  }

  // Points of a sector: apex at the node, arc of `range_m` from azimuth − width/2 to
  // azimuth + width/2 (bearings clockwise from north). Flat-earth offsets are fine at
  // the few kilometres a sector reaches.
  function wedge(n, a) {
    const range = a.range_m || CFG.coverage_radius_m;
    const dLat = range / 111320;
    const dLon = dLat / Math.max(0.01, Math.cos((n.lat * Math.PI) / 180));
    const steps = Math.max(4, Math.ceil(a.width_deg / 5));
    const pts = a.width_deg >= 360 ? [] : [[n.lat, n.lon]];
    for (let i = 0; i <= steps; i++) {
      const deg = a.azimuth_deg - a.width_deg / 2 + (a.width_deg * i) / steps;
      const rad = (deg * Math.PI) / 180;
      pts.push([n.lat + dLat * Math.cos(rad), n.lon + dLon * Math.sin(rad)]);
    }
    return pts;
  }

  // ------------------------------------------------------------------ details panel
  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") e.textContent = v;
      else if (k === "onclick") e.addEventListener("click", v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }

  function duration(s) {
    if (s == null) return "unknown";
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${m} min`;
    if (m) return `${m} min`;
    return `${s} s`;
  }

  const minus = (v) => String(v).replace("-", "\u2212");

  function quality(sig, tq, etx) {
    const t = CFG.thresholds;
    const grade = (good, fair) => (good ? "good" : fair ? "fair" : "poor");
    if (sig != null) return grade(sig >= t.signal_dbm[0], sig >= t.signal_dbm[1]);
    if (tq != null) return grade(tq >= t.tq[0], tq >= t.tq[1]);
    if (etx != null) return grade(etx <= t.etx[0], etx <= t.etx[1]);
    return "unknown";
  }

  const signalOf = (m) => (m.signal_dbm ?? m.signal_avg_dbm ?? null);

  // the same "best direction" rule as the server's link quality (mapdata.py)
  function entryQuality(entry) {
    const views = [entry.out, entry.in].filter(Boolean).map((v) => v.metrics);
    const best = (vals, pick) => (vals.length ? pick(...vals) : null);
    const num = (f) => views.map(f).filter((v) => v != null);
    return quality(best(num(signalOf), Math.max), best(num((m) => m.tq), Math.max),
      best(num((m) => m.etx), Math.min));
  }

  // a view not refreshed for two minutes (its node went quiet; it ages out later) says so
  const STALE_S = 120;

  function metricText(view) {
    if (!view) return "not reported";
    const age = view.last_seen == null ? 0 : Date.now() / 1000 - view.last_seen;
    const text = metricParts(view.metrics);
    return age > STALE_S ? `${text} (${duration(age)} ago)` : text;
  }

  function metricParts(m) {
    const parts = [];
    if (signalOf(m) != null) parts.push(`${minus(+signalOf(m).toFixed(1))} dBm`);
    if (m.tq != null) parts.push(`TQ ${m.tq}`);
    if (m.etx != null) parts.push(`ETX ${+m.etx.toFixed(2)}`);
    if (m.expected_tput_mbps != null) parts.push(`${+m.expected_tput_mbps.toFixed(1)} Mbit/s`);
    return parts.length ? parts.join(" · ") : "no metrics";
  }

  // "12:03" today, "3 Mar 12:03" before
  function clock(ts) {
    const d = new Date(ts * 1000);
    const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (d.toDateString() === new Date().toDateString()) return time;
    return `${d.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
  }

  const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

  // a button that opens a node's details (any node the map knows, drawn or not)
  function nodeButton(id, cls) {
    const n = known(id);
    if (!n) return el("b", { class: cls, text: id });
    return el("button", { type: "button", class: cls, text: n.name,
      onclick: () => open(id, true) });
  }

  // Why a node is in its state, with since when: the outage it caused or is cut off by,
  // else what its own state and last report say. Null when it is fine.
  function reasonOf(id, state, detail) {
    const heard = detail?.last_seen;
    const since = heard == null ? "" : ` since ${clock(heard)}`;
    const caused = outages.find((o) => o.cause.nodes.includes(id));
    if (caused) {
      const cut = caused.affected_count
        ? `${plural(caused.affected_count, "node")} cut off` : "no other node cut off";
      return [`${Word("offline")} since ${clock(caused.started_at_ts)}, the cause of an `
        + `outage: ${cut}.`];
    }
    const behind = outages.find((o) => o.affected.includes(id));
    if (behind) {
      const who = behind.cause.nodes.map((c) => nodeButton(c, "cause"));
      const links = behind.cause.links.map((l) => `${known(l.a)?.name || l.a}–`
        + `${known(l.b)?.name || l.b}`);
      return [`${Word("unreachable")} since ${clock(behind.started_at_ts)} by the outage of `,
        ...joined([...who, ...links]), "."];
    }
    switch (state) {
      case "offline": return [`${Word("offline")}${since} (last heard).`];
      case "unreachable": return [`${Word("unreachable")}${since}: no path to a gateway.`];
      case "silent": return [`${Word("silent")}${since}: its neighbours still hear it, `
        + "its agent does not report."];
      case "flapping": return ["Flapping: it went down and came back several times lately."];
      case "unmonitored": return [`${Word("unmonitored")}: the bridge that polls it `
        + `(${sourceText(detail?.source) || "unknown"}) is silent; shown as last heard`
        + `${heard == null ? "" : ` at ${clock(heard)}`}.`];
      default: return null;
    }
  }

  const joined = (items) => items.flatMap((e, i) => (i ? [", ", e] : [e]));
  // `snmp via bridge-1`: who speaks for a node that runs no agent (null: its own agent)
  const sourceText = (s) => (s ? (s.via ? `${s.kind} via ${s.via}` : s.kind) : null);

  function linkItem(entry, down) {
    const q = entryQuality(entry);
    const peer = known(entry.peer)
      ? nodeButton(entry.peer, "peer") : el("span", { class: "peer", text: entry.peer });
    // a node that is down shows what was last heard: no green pill for a link of the past
    const pill = down
      ? el("span", { class: "pill stale", text: q === "unknown" ? "no data" : `was ${q}` })
      : el("span", { class: `pill q-${q}`, text: q === "unknown" ? "no data" : q });
    return el("li", {},
      el("div", { class: "link-head" }, peer, el("span", { class: "kind", text: entry.kind }),
        pill),
      el("div", { class: "view", text: `this node hears: ${metricText(entry.out)}` }),
      el("div", { class: "view", text: `peer's view: ${metricText(entry.in)}` }));
  }

  // `detail` (from /api/v1/nodes/ID) speaks for nodes the map does not know yet
  function renderHead(id, detail) {
    const n = known(id) || {
      id, name: detail?.hostname || id, state: detail?.state || "unknown",
      gateway: detail?.gateway,
    };
    const state = detail?.state || n.state;
    const badges = el("p", { class: "badges" },
      el("span", { class: `pill state-${state}`, text: word(state) }),
      n.gateway ? el("span", { class: "pill gw", text: "gateway" }) : null,
      n.approximate ? el("span", { class: "pill approx", text: "approximate location" }) : null,
      !nodes.has(id) ? el("span", { class: "pill approx", text: "not on the map" }) : null);
    const reason = reasonOf(id, state, detail);
    const ref = encodeURIComponent(id);
    const actions = el("p", { class: "actions" },
      el("a", { href: `/install/${ref}`, text: "Installer view" }),
      el("a", { href: `/node/${ref}`, text: "History" }),
      el("a", { href: `/#node=${ref}`, class: "share", text: "Link to this node" }));
    return [el("h2", { text: n.name }), n.name !== id ? el("p", { class: "id", text: id }) : null,
      badges, reason ? el("p", { class: "reason" }, ...reason) : null, actions];
  }

  function renderDetail(d) {
    const ago = d.last_seen == null ? null : Date.now() / 1000 - d.last_seen;
    const lastSeen = ago == null ? "never" : ago < 5 ? "just now"
      : `${clock(d.last_seen)} (${duration(ago)} ago)`;
    const down = d.online === false;
    // uptime and clients of a node that is down would be old news: left out
    const facts = down
      ? [["Model", d.model || "unknown"], ["Last heard", lastSeen]]
      : [["Model", d.model || "unknown"], ["Uptime", duration(d.uptime_s)],
        ["Clients", d.clients ?? "unknown"], ["Last heard", lastSeen]];
    if (d.source) facts.push(["Reported by", sourceText(d.source)]);
    const dl = el("dl", {});
    for (const [k, v] of facts) dl.append(el("dt", { text: k }), el("dd", { text: String(v) }));
    const links = el("ul", { class: "links" }, ...d.links.map((e) => linkItem(e, down)));
    const title = down ? `Links (${d.links.length}), as last heard` : `Links (${d.links.length})`;
    return [dl, el("h3", { text: title }),
      d.links.length ? links : el("p", { class: "muted", text: "No links reported." })];
  }

  // Open a node's details; `fly` brings a drawn node into view (search, banner, links),
  // `push` names it in the URL (not when the URL is what opened it)
  async function open(id, fly = false, push = true) {
    const before = selected;
    selected = id;
    if (before && before !== id) restyle(before);
    restyle(id);
    stack();
    if (push && hashNode() !== id) history.pushState(null, "", `#node=${encodeURIComponent(id)}`);
    panel.hidden = false;
    document.body.classList.add("panel-open");
    if (nodes.has(id)) showNode(nodes.get(id), fly);
    if (before !== id) panelBody.replaceChildren(...renderHead(id).filter(Boolean),
      el("p", { class: "muted", text: "Loading…" }));
    await refreshPanel();
  }

  // The part of the map the details panel leaves free (container pixels from the top
  // left): the top 45 % on a phone (bottom sheet), all but the side panel on a desktop.
  function freeArea() {
    const size = map.getSize();
    if (panel.hidden) return size;
    return narrow.matches ? L.point(size.x, size.y * 0.45)
      : L.point(size.x - panel.offsetWidth, size.y);
  }

  // Bring a node into the free part of the map: fly there (search) or, after a click,
  // pan only if the panel now hides it.
  function showNode(n, fly) {
    const free = freeArea(), size = map.getSize();
    if (!fly) {
      const now = map.latLngToContainerPoint([n.lat, n.lon]);
      const margin = 24;
      if (now.x > margin && now.y > margin && now.x < free.x - margin
        && now.y < free.y - margin) return;
    }
    const zoom = fly ? Math.max(map.getZoom(), 16) : map.getZoom();
    // the centre that puts the node in the middle of the free area
    const at = map.project([n.lat, n.lon], zoom).subtract(free.divideBy(2)).add(size.divideBy(2));
    const centre = map.unproject(at, zoom);
    if (fly) map.flyTo(centre, zoom, { duration: 0.6 });
    else map.panTo(centre);
  }

  async function refreshPanel() {
    const id = selected;
    if (id == null) return;
    try {
      const d = await getJSON(`/api/v1/nodes/${encodeURIComponent(id)}`);
      if (selected !== id) return; // another node was opened meanwhile
      panelBody.replaceChildren(...renderHead(id, d).filter(Boolean), ...renderDetail(d));
    } catch (err) {
      if (selected === id) {
        const text = err.status === 404 ? `No node with the id ${id} is known.`
          : "Details are not available right now.";
        panelBody.replaceChildren(...renderHead(id).filter(Boolean),
          el("p", { class: "muted", text }));
      }
    }
  }

  function closePanel(push = true) {
    if (selected == null) return;
    const id = selected;
    selected = null;
    restyle(id);
    stack();
    panel.hidden = true;
    document.body.classList.remove("panel-open");
    if (push && hashNode() != null) history.pushState(null, "", location.pathname + location.search);
  }

  // ------------------------------------------------------------------ the URL
  function hashNode() {
    return new URLSearchParams(location.hash.slice(1)).get("node") || null;
  }

  // back, forward, a link to /#node=ID or an edited address: show what the URL names
  function followHash() {
    const id = hashNode();
    if (id == null) closePanel(false);
    else if (id !== selected) open(id, true, false);
  }

  window.addEventListener("popstate", followHash);
  window.addEventListener("hashchange", followHash);
  panel.querySelector(".close").addEventListener("click", () => closePanel());
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    results.hidden = true;
    closePanel();
  });

  // ------------------------------------------------------------------ search
  // every node the map knows, drawn or not, by name or id: the one named exactly first,
  // then those starting with the text, then those containing it
  function matches(query) {
    const q = query.trim().toLowerCase();
    if (!q) return [];
    const exact = [], starts = [], contains = [];
    for (const group of [nodes, hidden]) {
      for (const n of group.values()) {
        const name = n.name.toLowerCase(), id = n.id.toLowerCase();
        if (name === q || id === q) exact.push(n);
        else if (name.startsWith(q) || id.startsWith(q)) {
          if (starts.length < 8) starts.push(n);
        } else if (contains.length < 8 && (name.includes(q) || id.includes(q))) contains.push(n);
      }
    }
    return exact.concat(starts, contains).slice(0, 8);
  }

  function showMatches() {
    const found = matches(search.value);
    results.replaceChildren(...found.map((n) => {
      const label = n.name !== n.id ? `${n.name} (${n.id})` : n.name;
      return el("li", { role: "option" }, el("button", { type: "button",
        text: nodes.has(n.id) ? label : `${label} · not on the map`,
        onclick: () => choose(n.id) }));
    }));
    if (search.value.trim() && !found.length) {
      results.append(el("li", { class: "muted", text: "No node with that name or id" }));
    }
    results.hidden = !search.value.trim();
  }

  function choose(id) {
    results.hidden = true;
    search.blur(); // closes the phone keyboard so the map and the sheet are visible
    open(id, true);
  }

  search.addEventListener("input", showMatches);
  search.form.addEventListener("submit", (e) => {
    e.preventDefault();
    const first = matches(search.value)[0];
    if (first) choose(first.id);
  });
  document.addEventListener("click", (e) => {
    if (!search.form.contains(e.target)) results.hidden = true;
  });

  // ------------------------------------------------------------------ outages banner
  const SEVERITY = { critical: 2, warning: 1, info: 0 };

  // the outage that cuts off most first, then the more severe, then the older
  function byImpact(a, b) {
    return (b.affected_count - a.affected_count)
      || ((SEVERITY[b.severity] ?? 0) - (SEVERITY[a.severity] ?? 0))
      || (a.started_at_ts - b.started_at_ts);
  }

  // why an outage is as severe as it is (the rule of the collector's health: it cuts
  // nodes off, or a gateway or a link between live nodes is down)
  function impactOf(o) {
    if (o.affected_count) return `cuts off ${plural(o.affected_count, "node")}`;
    if (o.cause.nodes.some((id) => known(id)?.gateway)) return "a gateway is down";
    if (o.cause.links.length) return "a link between live nodes is down";
    return "no other node cut off";
  }

  function showOutages(list) {
    const before = causes;
    outages = [...list].sort(byImpact);
    causes = new Set(outages.flatMap((o) => o.cause.nodes));
    // only the dots that became or stopped being a cause change (and are stacked anew)
    for (const id of before) if (!causes.has(id)) restyle(id);
    for (const id of causes) if (!before.has(id)) restyle(id);
    stack();
    const shown = bannerOpen ? outages.length : narrow.matches ? 1 : 3;
    const key = JSON.stringify([shown, outages.slice(0, shown).map((o) => [o.id,
      o.affected_count, o.severity, o.cause, o.cause.nodes.map((id) => known(id)?.name)]),
    outages.length]);
    if (key === bannerKey) return; // unchanged: keep focus and scroll position
    bannerKey = key;
    banner.hidden = outages.length === 0;
    banner.classList.toggle("open", bannerOpen);
    if (!outages.length) { banner.replaceChildren(); return; }
    const items = outages.slice(0, shown).map(outageItem);
    if (outages.length > shown) {
      items.push(el("li", {}, el("button", { type: "button", class: "more",
        text: `and ${outages.length - shown} more`, onclick: () => toggleBanner(true) })));
    } else if (bannerOpen) {
      items.push(el("li", {}, el("button", { type: "button", class: "more",
        text: "show fewer", onclick: () => toggleBanner(false) })));
    }
    banner.replaceChildren(el("ul", {}, ...items));
  }

  function toggleBanner(all) {
    bannerOpen = all;
    showOutages(outages);
  }

  function outageItem(o) {
    const names = o.cause.nodes.map((id) => nodeButton(id, "cause"));
    const links = o.cause.links.map((l) => el("span", { class: "cause-link" },
      nodeButton(l.a, "cause"), "–", nodeButton(l.b, "cause")));
    const since = clock(o.started_at_ts);
    return el("li", { class: `outage ${o.severity}` },
      el("span", { class: `badge ${o.severity}`, text: o.severity }), " ",
      ...joined([...names, ...links]), ` down since ${since} — `,
      el("span", { class: "impact", text: impactOf(o) }));
  }

  // ------------------------------------------------------------------ fetching
  async function getJSON(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    if (!r.ok) { const e = new Error(`${path}: HTTP ${r.status}`); e.status = r.status; throw e; }
    return r.json();
  }

  async function fetchOutages() {
    if (!CFG.outages || alertingMissing) return null;
    try {
      return (await getJSON("/api/v1/outages")).outages;
    } catch (err) {
      // 503: this collector runs without alerting; stop asking (each failure is logged)
      if (err.status === 503) alertingMissing = true;
      return null;
    }
  }

  // The first view shows where the nodes are. In a larger network the outermost 2 % on
  // each side are left out: one router with a typo in its coordinates (or a friend's
  // node in another city) must not shrink the whole network to a dot.
  function fitNetwork(doc) {
    const count = doc.nodes.length;
    if (!count) { map.setView([20, 0], 2); return; }
    const lats = doc.nodes.map((n) => n.lat).sort((x, y) => x - y);
    const lons = doc.nodes.map((n) => n.lon).sort((x, y) => x - y);
    const cut = count >= 50 ? Math.floor(count * 0.02) : 0;
    const bounds = L.latLngBounds([lats[cut], lons[cut]],
      [lats[count - 1 - cut], lons[count - 1 - cut]]);
    map.fitBounds(bounds, { padding: [30, 30], maxZoom: 16, animate: false });
  }

  function markReady() {
    api = {
      markers: markers.size, links: lines.size, renderedAt: performance.now(),
      updates: 0, updatedAt: performance.now(),
      stateOf: (id) => known(id)?.state ?? null, // drawn or not
      open,
      selected: () => selected,
      zoom: (z) => { if (z != null) map.setZoom(z, { animate: false }); return map.getZoom(); },
      pointOf, // page coordinates of a node's dot, for tests that click it
      latLngOf: (id) => (markers.has(id) ? markers.get(id).layer.getLatLng() : null),
    };
    window.meshmonMap = api;
    document.body.dataset.ready = "1";
  }

  function pointOf(id) {
    const m = markers.get(id);
    if (!m) return null;
    const p = map.latLngToContainerPoint(m.layer.getLatLng());
    const box = map.getContainer().getBoundingClientRect();
    return { x: box.left + p.x, y: box.top + p.y };
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const [doc, current] = await Promise.all([getJSON("/api/v1/map"), fetchOutages()]);
      nodes.clear();
      for (const n of doc.nodes) nodes.set(n.id, n);
      hidden.clear();
      for (const n of doc.unlocated_nodes || []) hidden.set(n.id, n);
      if (current) showOutages(current);
      if (!fitted) {
        // fitted after the banner is laid out (it takes height from the map) and before
        // the layers are made, so that they are made once, in the size for that zoom
        map.invalidateSize(false);
        fitNetwork(doc);
        scale = scaleAt(map.getZoom());
      }
      apply(doc);
      summaryEl.classList.remove("stale");
      if (!fitted) {
        fitted = true;
        followHash(); // a shared link: /#node=ID
        // two frames: Leaflet paints its canvases in the first, ours comes after it
        requestAnimationFrame(() => requestAnimationFrame(markReady));
      } else if (api) {
        api.markers = markers.size;
        api.links = lines.size;
        api.updates += 1;
        api.updatedAt = performance.now();
        if (selected != null) refreshPanel();
      }
    } catch (err) {
      summaryEl.classList.add("stale"); // shown as "(reconnecting…)" by map.css
    } finally {
      busy = false;
    }
  }

  // a tab in the background does not poll; it catches up as soon as it is shown again
  async function loop() {
    if (!document.hidden) await refresh();
    setTimeout(loop, CFG.refresh_s * 1000);
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden && api) refresh(); });

  if (narrow.matches) document.getElementById("legend")?.removeAttribute("open");
  loop();
})();
