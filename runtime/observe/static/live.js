// hrlf live view: polls api/live once a second and draws each stream's sentiment (SVG).
// Plain JavaScript, no library, no build step: everything is in this file.
"use strict";

const NS = "http://www.w3.org/2000/svg";
const W = 480, H = 160, TOP = 8, PLOT = 92, LANE = 12, LEFT = 34;
const COLORS = { text: "var(--text)", audio: "var(--audio)", vision: "var(--vision)" };
let updates = 0;

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(NS, tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function row(table, key, label, value) {
  const tr = el("tr", { "data-key": key });
  tr.append(el("th", {}, label), el("td", {}, value));
  table.append(tr);
}

function reasons(obj) {
  const items = Object.entries(obj || {}).sort((a, b) => b[1] - a[1]);
  return items.length ? items.map(([k, v]) => `${k} ${v}`).join(", ") : "none";
}

function drawTotals(d) {
  const t = d.totals, table = document.getElementById("totals");
  table.replaceChildren();
  const dropped = Object.values(t.dropped || {}).reduce((a, b) => a + b, 0);
  row(table, "streams", "streams open", String(d.streams_open));
  row(table, "segments", "windows scored", String(t.segments ?? 0));
  row(table, "no_data", "windows without data", String(t.no_data ?? 0));
  row(table, "received", "frames received / used", `${t.received ?? 0} / ${t.used ?? 0}`);
  row(table, "dropped", "frames dropped", `${dropped} (${reasons(t.dropped)})`);
  row(table, "segments_dropped", "windows lost", reasons(t.segments_dropped));
  if (Object.keys(t.source_drops || {}).length)
    row(table, "source_drops", "source drops", reasons(t.source_drops));
  const p = document.getElementById("presence");
  p.replaceChildren();
  for (const m of d.modalities) {
    const gone = d.presence.absent.filter(a => a[0] === m).map(a => `${a[1]} ${a[2]}`);
    row(p, `presence-${m}`, m, `present in ${d.presence.present[m]} windows` +
      `${gone.length ? "; absent: " + gone.join(", ") : ""}; now in ` +
      `${d.presence.streams_with[m] ?? 0} stream(s)`);
  }
  const checks = document.getElementById("checks");
  checks.replaceChildren(...d.checks.map(c =>
    el("li", { class: c.ok ? "ok" : "bad", "data-check": c.name }, `${c.name}: ${c.detail}`)));
}

function lanes(svg, pts, x, mods) {
  // the hatch pattern for absent stretches
  const defs = el("svg:defs"), pat = el("svg:pattern", { id: "hatch", width: 4, height: 4,
    patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  pat.append(el("svg:rect", { width: 4, height: 4, fill: "#f3f3f3" }),
    el("svg:line", { x1: 0, y1: 0, x2: 0, y2: 4, stroke: "#c8c8c8", "stroke-width": 2 }));
  defs.append(pat);
  svg.append(defs);
  mods.forEach((m, i) => {
    const y = TOP + PLOT + 6 + i * LANE, initial = m[0];
    svg.append(el("svg:text", { x: 0, y: y + 9, class: "lane-label" }, m));
    pts.forEach((p, j) => {
      const x0 = Math.max(LEFT, x(j === 0 ? p[0] - (pts[1] ? pts[1][0] - p[0] : 1)
        : pts[j - 1][0]));
      const w = Math.max(1, x(p[0]) - x0);
      const has = p[2].includes(initial);
      const r = el("svg:rect", { x: x0, y, width: w, height: LANE - 3,
        class: has ? "have" : (p[1] === null ? "nodata" : "gap"),
        fill: has ? COLORS[m] : "" });
      if (!has) r.append(el("svg:title", {}, `${m} absent: ${p[3][m] || "no_frames"} ` +
        `(window ending ${p[0].toFixed(1)} s)`));
      svg.append(r);
    });
  });
}

function chart(s, range, mods) {
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `sentiment of ${s.name}` });
  const pts = s.points;
  const t1 = pts.length ? pts[pts.length - 1][0] : 1, t0 = pts.length ? pts[0][0] : 0;
  const span = Math.max(t1 - t0, 1e-6);
  const x = t => LEFT + (W - LEFT - 4) * (t - t0) / span;
  const y = v => TOP + PLOT * (range[1] - v) / (range[1] - range[0]);
  svg.append(el("svg:line", { x1: LEFT, x2: W - 4, y1: y(0), y2: y(0), class: "zero" }),
    el("svg:line", { x1: LEFT, x2: LEFT, y1: TOP, y2: TOP + PLOT, class: "axis" }),
    el("svg:text", { x: 0, y: y(range[1]) + 8, class: "lane-label" }, `+${range[1]}`),
    el("svg:text", { x: 0, y: y(range[0]), class: "lane-label" }, `${range[0]}`),
    el("svg:text", { x: LEFT, y: H - 2, class: "lane-label" }, `${t0.toFixed(0)} s`),
    el("svg:text", { x: W - 4, y: H - 2, class: "lane-label", "text-anchor": "end" },
      `${t1.toFixed(0)} s (stream time)`));
  let path = "", pen = false;
  for (const p of pts) {
    if (p[1] === null) { pen = false; continue; }  // no_data: a gap in the line
    path += `${pen ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`;
    pen = true;
  }
  svg.append(el("svg:path", { d: path || "M0,0", class: "score-line" }));
  lanes(svg, pts, x, mods);
  return svg;
}

function drawStream(s, d) {
  const last = s.points.length ? s.points[s.points.length - 1] : null;
  const card = el("section", { class: "stream", "data-stream": s.name,
    "data-points": s.points.length, "data-last-t": last ? last[0] : "" });
  const score = last && last[1] !== null ? (last[1] > 0 ? "+" : "") + last[1].toFixed(2)
    : "no data";
  card.append(el("h2", {}, s.name), el("span", { class: "score" }, score));
  const mods = el("div", { class: "mods" });
  for (const m of d.modalities) {
    const why = s.absent[m];
    const chip = el("span", { class: `mod ${why ? "absent" : "present"}`, "data-modality": m },
      why ? `${m} (${why})` : m);
    if (why) chip.setAttribute("data-reason", why);
    mods.append(chip);
  }
  card.append(mods, chart(s, d.score_range, d.modalities));
  return card;
}

function draw(d) {
  updates += 1;
  document.getElementById("kind").textContent =
    `${d.kind === "hub" ? "hub" : "run"} · ${d.backend || "loading"} · ${d.version}`;
  const st = document.getElementById("status");
  st.className = d.ready ? "ready" : "unready";
  st.textContent = d.ready ? "ready" : "not ready";
  st.dataset.updates = updates;
  st.dataset.ready = d.ready;
  drawTotals(d);
  const main = document.getElementById("streams");
  main.replaceChildren(...d.streams.map(s => drawStream(s, d)));
  main.dataset.count = d.streams.length;
  const hidden = d.streams_open - d.streams.length;
  document.getElementById("note").textContent = hidden > 0
    ? `Drawing ${d.streams.length} of ${d.streams_open} open streams (the first ones; the ` +
      `totals count them all).` : "";
}

async function poll() {
  try {
    const r = await fetch("api/live", { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    draw(await r.json());
  } catch (e) {
    const st = document.getElementById("status");
    st.className = "offline";
    st.textContent = `disconnected (${e.message}); retrying`;
  }
  setTimeout(poll, 1000);
}

poll();
