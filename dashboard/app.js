// The hio dashboard: polls this master every 2 s (/v1/status, /v1/history, and through it the
// repository's knowledge, records and failures) and draws with the bundled Chart.js. No other origin,
// no network beyond the master. Every number shown carries an id and a data-value with the raw value.
"use strict";

(() => {
  const REFRESH_MS = 2000;
  const MAX_WINDOW_MIN = 60;
  // Tableau 10: distinct, calm, readable on white.
  const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac"];
  const GREY = "#a0a7b4";
  const INK = "#1d2330";

  const state = {
    samples: [], decisions: [], since: 0, nowMs: 0, windowMin: 15, charts: {},
    knowledgeVersion: null, knowledge: null, seriesCharts: [], lastOk: 0,
    cutK: null,  // clusters the user asked for (slider, or ?k= in the URL); null: discovery's cut
  };
  {
    const k = Number(new URLSearchParams(window.location.search).get("k"));
    if (Number.isInteger(k) && k >= 1) state.cutK = k;
  }

  const $ = (id) => document.getElementById(id);
  const clusterColour = (label) => (label == null ? GREY : PALETTE[(Number(label) - 1 + PALETTE.length) % PALETTE.length]);

  // ---- formatting ----
  const fmtInt = (n) => (n == null || Number.isNaN(n) ? "–" : Math.round(n).toLocaleString("en-US"));
  function fmtNum(x, digits = 3) {
    if (x == null || !Number.isFinite(x)) return "–";
    if (x === 0) return "0";
    const a = Math.abs(x);
    if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
    return Number(x.toPrecision(digits)).toLocaleString("en-US", { maximumSignificantDigits: digits });
  }
  function fmtBytes(b) {
    if (b == null || !Number.isFinite(b)) return "–";
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (b >= 1000 && i < units.length - 1) { b /= 1000; i += 1; }
    return `${b >= 100 || i === 0 ? Math.round(b) : b.toFixed(1)} ${units[i]}`;
  }
  function fmtDuration(s) {
    if (s < 60) return `${Math.round(s)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    const h = Math.floor(s / 3600);
    return h < 48 ? `${h} h ${Math.floor((s % 3600) / 60)} min` : `${Math.floor(h / 24)} d ${h % 24} h`;
  }
  const fmtClock = (ms) => new Date(ms).toLocaleTimeString("en-GB", { hour12: false });
  // Everything that came from a client, a worker or the repository goes into HTML through esc(), numbers
  // too: a hostile repository may send a string where a number belongs.
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  // Shows `text` in element `id` and keeps the raw number in data-value for tests and scripts.
  function setNum(id, value, text) {
    const el = $(id);
    if (!el) return;
    el.dataset.value = value == null ? "" : String(value);
    el.textContent = text != null ? text : fmtInt(value);
  }

  async function getJSON(url) {
    let r;
    try {
      r = await fetch(url, { cache: "no-store" });
    } catch (e) {
      return { status: 0, body: { error: "the master does not answer" } };
    }
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    return { status: r.status, body };
  }

  // ---- charts: shared options ----
  Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
  Chart.defaults.font.size = 11.5;
  Chart.defaults.color = "#5b6372";
  Chart.defaults.borderColor = "#e8eaee";
  Chart.defaults.animation = false;
  Chart.defaults.plugins.legend.labels.boxWidth = 12;
  Chart.defaults.plugins.legend.labels.boxHeight = 2;
  Chart.defaults.maintainAspectRatio = false;

  function timeAxis() {
    return {
      type: "linear",
      min: -state.windowMin,
      max: 0,
      ticks: { callback: (v) => (v === 0 ? "now" : `${v} min`), maxTicksLimit: 7 },
      grid: { display: false },
    };
  }

  function lineDataset(label, colour, data, extra = {}) {
    return Object.assign({
      label, data, borderColor: colour, backgroundColor: colour, borderWidth: 1.6, pointRadius: 0,
      pointHoverRadius: 3, tension: 0, spanGaps: false,
    }, extra);
  }

  function makeChart(id, config) {
    if (state.charts[id]) state.charts[id].destroy();
    state.charts[id] = new Chart($(id), config);
    return state.charts[id];
  }

  const legend = { position: "top", align: "end", labels: { usePointStyle: false } };
  const tooltipTitle = (items) => (items.length ? `${fmtNum(-items[0].parsed.x * 60, 3)} s ago` : "");

  // ---- system over time ----
  function initSystemCharts() {
    makeChart("chart-capacity", {
      type: "line",
      data: { datasets: [
        lineDataset("workers", INK, [], { stepped: true, borderWidth: 2 }),
        lineDataset("free channels", "#59a14f", [], { stepped: true }),
        lineDataset("queue length", "#f28e2b", [], { yAxisID: "y1", fill: { target: "origin" }, backgroundColor: "rgba(242,142,43,0.12)" }),
        { label: "scale-out", data: [], type: "scatter", pointStyle: "triangle", pointRadius: 7, borderColor: "#c0392b", backgroundColor: "#c0392b", showLine: false },
        { label: "scale-in", data: [], type: "scatter", pointStyle: "triangle", rotation: 180, pointRadius: 7, borderColor: "#2f6fb3", backgroundColor: "#2f6fb3", showLine: false },
      ] },
      options: {
        interaction: { mode: "nearest", intersect: false, axis: "x" },
        plugins: { legend, tooltip: { callbacks: { title: tooltipTitle } } },
        scales: {
          x: timeAxis(),
          y: { beginAtZero: true, title: { display: true, text: "workers, channels" }, ticks: { precision: 0 } },
          y1: { beginAtZero: true, position: "right", title: { display: true, text: "queued tuples" }, grid: { display: false }, ticks: { precision: 0 } },
        },
      },
    });
    makeChart("chart-rates", {
      type: "line",
      data: { datasets: [
        lineDataset("received tuples/s", GREY, [], { borderDash: [4, 3] }),
        lineDataset("processed tuples/s", "#4e79a7", [], { borderWidth: 2 }),
        lineDataset("processed MB/s", "#b07aa1", [], { yAxisID: "y1" }),
      ] },
      options: {
        interaction: { mode: "nearest", intersect: false, axis: "x" },
        plugins: { legend, tooltip: { callbacks: { title: tooltipTitle } } },
        scales: {
          x: timeAxis(),
          y: { beginAtZero: true, title: { display: true, text: "tuples/s" } },
          y1: { beginAtZero: true, position: "right", title: { display: true, text: "MB/s" }, grid: { display: false } },
        },
      },
    });
    makeChart("chart-occupancy", {
      type: "line",
      data: { datasets: [] },
      options: {
        interaction: { mode: "nearest", intersect: false, axis: "x" },
        plugins: { legend, tooltip: { callbacks: { title: tooltipTitle } } },
        scales: { x: timeAxis(), y: { stacked: true, beginAtZero: true, title: { display: true, text: "busy channels" }, ticks: { precision: 0 } } },
      },
    });
  }

  // At most `most` rows: consecutive samples merged, rates and occupancy averaged, gauges as last seen.
  function bucketed(rows, most) {
    if (rows.length <= most) return rows;
    const k = Math.ceil(rows.length / most);
    const out = [];
    for (let i = 0; i < rows.length; i += k) {
      const part = rows.slice(i, i + k);
      const last = part[part.length - 1];
      const mean = (f) => part.reduce((a, s) => a + f(s), 0) / part.length;
      const occupancy = {};
      for (const id of Object.keys(last.occupancy || {})) {
        occupancy[id] = [mean((s) => (s.occupancy && s.occupancy[id] ? s.occupancy[id][0] : 0)), last.occupancy[id][1]];
      }
      out.push(Object.assign({}, last, {
        tuples_in_per_s: mean((s) => s.tuples_in_per_s), tuples_per_s: mean((s) => s.tuples_per_s),
        bytes_per_s: mean((s) => s.bytes_per_s), occupancy,
      }));
    }
    return out;
  }

  function drawSystem() {
    const now = state.nowMs;
    const from = now - state.windowMin * 60000;
    const rows = bucketed(state.samples.filter((s) => s.at_ms >= from), 300);
    const x = (ms) => (ms - now) / 60000;
    const cap = state.charts["chart-capacity"];
    cap.data.datasets[0].data = rows.map((s) => ({ x: x(s.at_ms), y: s.workers }));
    cap.data.datasets[1].data = rows.map((s) => ({ x: x(s.at_ms), y: s.channels_free }));
    cap.data.datasets[2].data = rows.map((s) => ({ x: x(s.at_ms), y: s.queue_length }));
    // Decisions sit on the workers line at their time.
    const workersAt = (ms) => {
      let w = rows.length ? rows[0].workers : 0;
      for (const s of rows) { if (s.at_ms > ms) break; w = s.workers; }
      return w;
    };
    const inWindow = state.decisions.filter((d) => d.at_ms >= from);
    cap.data.datasets[3].data = inWindow.filter((d) => d.action === "scale_out").map((d) => ({ x: x(d.at_ms), y: workersAt(d.at_ms) }));
    cap.data.datasets[4].data = inWindow.filter((d) => d.action === "scale_in").map((d) => ({ x: x(d.at_ms), y: workersAt(d.at_ms) }));
    const rates = state.charts["chart-rates"];
    rates.data.datasets[0].data = rows.map((s) => ({ x: x(s.at_ms), y: s.tuples_in_per_s }));
    rates.data.datasets[1].data = rows.map((s) => ({ x: x(s.at_ms), y: s.tuples_per_s }));
    rates.data.datasets[2].data = rows.map((s) => ({ x: x(s.at_ms), y: s.bytes_per_s / 1e6 }));
    const occ = state.charts["chart-occupancy"];
    const ids = [];
    for (const s of rows) for (const id of Object.keys(s.occupancy || {})) if (!ids.includes(id)) ids.push(id);
    ids.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
    occ.data.datasets = ids.map((id, i) => lineDataset(id, PALETTE[i % PALETTE.length], rows.map((s) => ({
      x: x(s.at_ms), y: s.occupancy && s.occupancy[id] ? s.occupancy[id][0] : null,
    })), { fill: true, backgroundColor: `${PALETTE[i % PALETTE.length]}55`, stepped: true, stack: "busy" }));
    occ.data.datasets.push(lineDataset("channels", INK, rows.map((s) => ({ x: x(s.at_ms), y: s.channels_total })),
      { borderDash: [3, 3], borderWidth: 1.2, stepped: true, stack: "total" }));
    // A young master has less history than the window: show what there is (at least a minute).
    const oldest = state.samples.length ? state.samples[0].at_ms : now;
    const span = Math.min(state.windowMin, Math.max(1, Math.ceil((now - oldest) / 60000)));
    for (const c of [cap, rates, occ]) {
      c.options.scales.x.min = -span;
      c.update("none");
    }
    drawDecisions();
  }

  function drawDecisions() {
    const box = $("decisions");
    if (!state.decisions.length) {
      box.innerHTML = state.scalingEnabled
        ? '<p class="empty">No scaling decisions yet: the policy holds (phase 2) or waits for its cool-downs.</p>'
        : '<p class="empty">Autoscaling is off (start the master with <code>--autoscale</code>, or <code>hio up --autoscale</code>).</p>';
      return;
    }
    const rows = state.decisions.slice().reverse().map((d) => `<tr data-at="${esc(d.at_ms)}">
      <td>${fmtClock(d.at_ms)}</td><td><span class="phase phase-${esc(d.phase)}">phase ${esc(d.phase)}</span></td>
      <td>${d.action === "scale_out" ? "▲ out" : "▼ in"} ${esc(d.workers)}</td><td>${esc(d.reason)}</td><td>${esc(d.result)}</td></tr>`);
    box.innerHTML = `<table id="decision-table" data-count="${state.decisions.length}"><thead><tr><th>time</th><th>phase</th>
      <th>action</th><th>reason</th><th>result</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
  }

  async function refreshHistory() {
    const { status, body } = await getJSON(`/v1/history?since=${state.since}`);
    if (status !== 200) throw new Error("history");
    state.nowMs = body.now_ms;
    for (const s of body.samples) state.samples.push(s);
    for (const d of body.decisions) state.decisions.push(d);
    if (body.samples.length) state.since = body.samples[body.samples.length - 1].at_ms;
    const cutoff = state.nowMs - MAX_WINDOW_MIN * 60000;
    while (state.samples.length && state.samples[0].at_ms < cutoff) state.samples.shift();
    while (state.decisions.length > 500) state.decisions.shift();
    drawSystem();
  }

  // ---- now: tiles and tuple counts ----
  async function refreshStatus() {
    const { status, body: s } = await getJSON("/v1/status");
    if (status !== 200) throw new Error("status");
    const workers = s.workers.length;
    const draining = s.workers.filter((w) => w.draining).length;
    setNum("stat-workers", workers);
    $("stat-workers-sub").textContent = draining ? `${draining} draining` : workers ? "all accepting" : "none registered";
    setNum("stat-channels-free", s.channels.free);
    setNum("stat-channels-total", s.channels.total);
    $("stat-channels-sub").textContent = `${s.channels.busy} busy`;
    setNum("stat-queue-length", s.queue.length);
    setNum("stat-queue-bytes", s.queue.bytes, `${fmtBytes(s.queue.bytes)} queued`);
    setNum("stat-tuples-per-s", s.rates.tuples_per_s, fmtNum(s.rates.tuples_per_s));
    setNum("stat-bytes-per-s", s.rates.bytes_per_s, `${fmtBytes(s.rates.bytes_per_s)}/s`);
    const c = s.counters;
    setNum("stat-processed", c.processed);
    setNum("stat-bytes", c.bytes, `${fmtBytes(c.bytes)} in all`);
    setNum("stat-failed", c.failed);
    $("stat-failed").dataset.nonzero = c.failed > 0 ? "1" : "0";
    $("stat-failed-sub").textContent = `${c.channel_restarts} channel restarts`;
    const sc = s.scaling || { enabled: false };
    state.scalingEnabled = !!sc.enabled;
    if (sc.enabled) {
      setNum("stat-phase", sc.phase, `phase ${sc.phase}`);
      $("stat-phase-reason").textContent = sc.reason || `${sc.min_workers}..${sc.max_workers} workers`;
      $("stat-phase-reason").title = sc.reason || "";
    } else {
      setNum("stat-phase", null, "off");
      $("stat-phase-reason").textContent = "fixed set of workers";
    }
    setNum("count-received", c.processed + s.queue.length);  // processed counts the failed ones too
    setNum("count-queued", c.queued);
    setNum("count-in-queue", s.queue.length);
    setNum("count-processed", c.processed);
    setNum("count-failed", c.failed);
    $("meta").textContent = `hio ${s.version} · master up ${fmtDuration(s.uptime_s)} · ${location.host}`;
  }

  // ---- tuples: failures (from the repository, through the master) ----
  async function refreshFailures() {
    const { status, body } = await getJSON("/v1/failures");
    const box = $("failures");
    if (status !== 200) {
      $("tuples-meta").textContent = "";
      setNum("count-stored", null, "–");
      box.innerHTML = `<p class="empty">${esc(body && body.error ? body.error : `failures unavailable (HTTP ${status})`)}</p>`;
      return;
    }
    setNum("count-stored", body.counts.stored);
    $("tuples-meta").textContent = `repository: ${fmtInt(body.counts.records)} records, ${fmtInt(body.counts.failed)} failed`;
    if (!body.recent.length) {
      box.innerHTML = '<p class="empty" id="failures-none">No failed tuples among the recent records.</p>';
      return;
    }
    box.innerHTML = `<table id="failure-table" data-count="${body.recent.length}"><thead><tr><th>processed</th><th>tuple</th>
      <th>source</th><th>worker / channel</th><th>reason</th></tr></thead><tbody>${body.recent.map((f) => `<tr data-id="${esc(f.id)}">
      <td>${fmtClock(f.processed_at_ms)}</td><td>${esc(f.id)}</td><td>${esc(f.source)}</td><td>${esc(f.worker)} / ${esc(f.channel)}</td>
      <td class="err">${esc(f.error)}</td></tr>`).join("")}</tbody></table>`;
  }

  // ---- science preview ----
  function scienceNotice(text, kind) {
    const n = $("science-notice");
    n.hidden = false;
    n.dataset.kind = kind;
    n.textContent = text;
  }

  async function refreshKnowledge() {
    // The history's newest entry tells whether the (possibly large) document changed.
    const head = await getJSON("/v1/knowledge?limit=1");
    if (head.status !== 200) return knowledgeUnavailable(head);
    const newest = head.body.versions && head.body.versions[0];
    if (!newest) {
      state.knowledge = null;
      $("science-body").hidden = true;
      scienceNotice("No knowledge yet: hio-discovery publishes its first clusters after its first tick with stored features.", "info");
      $("knowledge-meta").innerHTML = "";
      return;
    }
    if (newest.version !== state.knowledgeVersion) {
      const doc = await getJSON("/v1/knowledge/latest");
      if (doc.status !== 200) return knowledgeUnavailable(doc);
      state.knowledge = doc.body;
      state.knowledgeVersion = doc.body.version;
      renderKnowledge(doc.body);
    }
    $("science-notice").hidden = true;
    $("science-body").hidden = false;
    const k = state.knowledge;
    const age = Math.max(0, (state.nowMs || Date.now()) - (k.created_at_ms || k.stored_at_ms)) / 1000;
    $("knowledge-meta").innerHTML = `version <b id="knowledge-version" data-value="${esc(k.version)}">${esc(k.version)}</b> ·
      ${esc(k.method)} linkage · <span id="knowledge-points" data-value="${esc(k.points)}">${fmtInt(k.points)}</span> tuples in
      <span id="knowledge-groups" data-value="${esc(k.groups)}">${fmtInt(k.groups)}</span> parameter points ·
      <span id="knowledge-clusters" data-value="${esc(state.shownClusters)}">${esc(state.shownClusters)}</span> clusters ·
      ${Array.isArray(k.columns) ? k.columns.length : 0} features${k.two_stage ? " · two-stage" : ""} · made ${fmtDuration(age)} ago`;
  }

  function knowledgeUnavailable(res) {
    const why = res.body && res.body.error ? res.body.error : `HTTP ${res.status}`;
    if (res.status === 404) {
      scienceNotice("No knowledge yet: hio-discovery publishes its first clusters after its first tick with stored features.", "info");
    } else {
      scienceNotice(`The science preview is unavailable: ${why}. The system panels above keep updating.`, "error");
    }
    $("science-body").hidden = true;
    $("knowledge-meta").innerHTML = "";
  }

  function paramsText(p) {
    if (!p || typeof p !== "object") return "(no parameters)";
    return Object.keys(p).sort().map((k) => `${k} ${typeof p[k] === "number" ? fmtNum(p[k]) : p[k]}`).join(", ");
  }

  // ---- re-cutting the tree in the page (the same cut as hio::discovery::cut_into) ----
  // Labels 1..k of the linkage's leaves, numbered in order of first appearance in the pre-order
  // traversal, for the lowest cut that leaves at most k clusters.
  function cutLeaves(Z, k) {
    const n = Z.length + 1;
    if (k >= n) {
      const labels = new Array(n);
      leafOrder(Z).forEach((leaf, i) => { labels[leaf] = i + 1; });
      return labels;
    }
    const most = new Array(Z.length);  // the largest merge distance in each merge's subtree
    Z.forEach(([a, b, d], i) => { most[i] = Math.max(d, a >= n ? most[a - n] : -Infinity, b >= n ? most[b - n] : -Infinity); });
    const threshold = k <= 1 ? Infinity : most.slice().sort((x, y) => x - y)[n - 1 - k];
    const labels = new Array(n).fill(0);
    let count = 0;
    const stack = [2 * n - 2];
    while (stack.length) {
      const node = stack.pop();
      if (node < n) { labels[node] = ++count; continue; }
      if (most[node - n] <= threshold) {
        count += 1;
        const inner = [node];
        while (inner.length) {
          const m = inner.pop();
          if (m < n) labels[m] = count; else inner.push(Z[m - n][0], Z[m - n][1]);
        }
        continue;
      }
      stack.push(Z[node - n][1], Z[node - n][0]);
    }
    return labels;
  }

  function leafOrder(Z) {
    const n = Z.length + 1, order = [], stack = [2 * n - 2];
    while (stack.length) {
      const node = stack.pop();
      if (node < n) order.push(node); else stack.push(Z[node - n][1], Z[node - n][0]);
    }
    return order;
  }

  // The document as it would be cut into k clusters: new point labels, and per cluster its size, points,
  // parameter ranges and values, and as representative the first tuple of the point nearest the
  // cluster's centre in the PCA plane (discovery's own representative needs the features, which the
  // page does not have).
  function recut(doc, k) {
    const Z = doc.linkage || [];
    const points = doc.point_labels || [];
    if (!Z.length || !points.length) return doc;
    const leaves = cutLeaves(Z, k);
    const twoStage = points.some((p) => p.leaf != null);
    const point_labels = points.map((p, i) => ({ ...p, label: leaves[twoStage ? p.leaf : i] }));
    const byLabel = new Map();
    point_labels.forEach((p, i) => {
      if (!byLabel.has(p.label)) byLabel.set(p.label, []);
      byLabel.get(p.label).push(i);
    });
    const proj = doc.projection || [];
    const clusters = [...byLabel.entries()].sort((a, b) => a[0] - b[0]).map(([label, members]) => {
      const ranges = {}, values = {};
      let size = 0;
      for (const i of members) {
        size += point_labels[i].tuples.length;
        const params = point_labels[i].params;
        if (!params || typeof params !== "object") continue;
        for (const [name, v] of Object.entries(params)) {
          if (typeof v === "number") {
            const r = ranges[name];
            ranges[name] = r ? [Math.min(r[0], v), Math.max(r[1], v)] : [v, v];
          } else {
            const seen = values[name] || (values[name] = []);
            const text = typeof v === "string" ? v : JSON.stringify(v);
            if (seen.length < 20 && !seen.includes(text)) seen.push(text);
          }
        }
      }
      for (const name of Object.keys(values)) values[name].sort();
      const centre = [0, 1].map((a) => members.reduce((s, i) => s + (proj[i] ? proj[i][a] : 0), 0) / members.length);
      let best = members[0], bestD = Infinity;
      for (const i of members) {
        if (!proj[i]) continue;
        const d = (proj[i][0] - centre[0]) ** 2 + (proj[i][1] - centre[1]) ** 2;
        if (d < bestD) { bestD = d; best = i; }
      }
      return { label, size, groups: members.length, representative_tuple: point_labels[best].tuples[0], params_ranges: ranges, params_values: values };
    });
    return { ...doc, point_labels, clusters };
  }

  // The slider: 1 .. the most clusters discovery scored; its text names the level's score.
  function renderCut(doc) {
    const cut = doc.cut || {};
    const levels = Array.isArray(cut.levels) ? cut.levels : [];
    const groups = (doc.linkage || []).length + 1;
    const chosen = Number(cut.clusters) || doc.clusters.length;
    const top = Math.max(chosen, ...levels.map((l) => l.clusters), 1);
    const k = Math.min(state.cutK != null ? state.cutK : chosen, groups);
    const slider = $("cut-k");
    slider.max = String(Math.max(top, 2));
    slider.value = String(k);
    slider.disabled = groups < 2;
    setNum("cut-clusters", k, String(k));
    const level = levels.find((l) => l.clusters === k);
    const score = level ? `${esc(cut.criterion)} score ${fmtNum(level.score)}` : "";
    const how = cut.by === "k" ? `--k ${chosen}` : cut.by === "threshold" ? `--threshold ${fmtNum(cut.threshold)}` : esc(cut.criterion || "?");
    const mine = k !== chosen;
    $("cut-text").innerHTML = mine
      ? `your cut${score ? ` · ${score}` : ""} · discovery chose ${chosen}`
      : `discovery's cut: ${how}${score && cut.by !== "criterion" ? ` · ${score}` : level ? ` · score ${fmtNum(level.score)}` : ""}`;
    $("cut").dataset.mine = String(mine);
    $("cut-reset").hidden = !mine;
    return mine ? recut(doc, k) : doc;
  }

  $("cut-k").addEventListener("input", (e) => {
    state.cutK = Number(e.target.value);
    if (state.knowledge) renderKnowledge(state.knowledge);
  });
  $("cut-reset").addEventListener("click", () => {
    state.cutK = null;
    if (state.knowledge) renderKnowledge(state.knowledge);
  });

  function renderKnowledge(original) {
    const doc = renderCut(original);
    state.shownClusters = doc.clusters.length;
    const count = $("knowledge-clusters");
    if (count) { count.dataset.value = String(doc.clusters.length); count.textContent = String(doc.clusters.length); }
    const clusters = doc.clusters.slice().sort((a, b) => a.label - b.label);
    makeChart("chart-sizes", {
      type: "bar",
      data: {
        labels: clusters.map((c) => `cluster ${c.label}`),
        datasets: [{ label: "tuples", data: clusters.map((c) => c.size), backgroundColor: clusters.map((c) => clusterColour(c.label)), borderRadius: 3, maxBarThickness: 56 }],
      },
      options: {
        plugins: { legend: { display: false }, tooltip: { callbacks: { afterLabel: (i) => `${clusters[i.dataIndex].groups} parameter points` } } },
        scales: { x: { grid: { display: false } }, y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "tuples" } } },
      },
    });
    renderDendrogram(doc);
    renderPca(doc);
    renderClusters(doc, clusters);
  }

  function renderDendrogram(doc) {
    const Z = doc.linkage || [];
    const n = Z.length + 1;
    const order = doc.leaf_order && doc.leaf_order.length === n ? doc.leaf_order : [...Array(n).keys()];
    const byPoint = doc.point_labels && doc.point_labels.length === n;  // not so when two-stage
    const pos = new Array(2 * n - 1).fill(0);
    const height = new Array(2 * n - 1).fill(0);
    const label = new Array(2 * n - 1).fill(null);
    order.forEach((leaf, i) => { pos[leaf] = i; if (byPoint) label[leaf] = doc.point_labels[leaf].label; });
    const segments = new Map();  // cluster label (or null) -> points with gaps
    Z.forEach((row, k) => {
      const [a, b, d] = row;
      const node = n + k;
      pos[node] = (pos[a] + pos[b]) / 2;
      height[node] = d;
      label[node] = label[a] != null && label[a] === label[b] ? label[a] : null;
      const key = label[node];
      if (!segments.has(key)) segments.set(key, []);
      segments.get(key).push({ x: pos[a], y: height[a] }, { x: pos[a], y: d }, { x: pos[b], y: d }, { x: pos[b], y: height[b] }, { x: pos[b], y: null });
    });
    const datasets = [...segments.entries()].map(([key, pts]) => ({
      label: key == null ? "between clusters" : `cluster ${key}`, data: pts, showLine: true, spanGaps: false,
      borderColor: clusterColour(key), backgroundColor: clusterColour(key), borderWidth: 1.4, pointRadius: 0, pointHoverRadius: 0,
    }));
    if (byPoint) {
      datasets.push({
        label: "leaves", data: order.map((leaf, i) => ({ x: i, y: 0, leaf })), showLine: false,
        pointRadius: n > 200 ? 1.5 : 3.5, pointBackgroundColor: order.map((leaf) => clusterColour(label[leaf])), pointBorderWidth: 0,
      });
    }
    makeChart("chart-dendrogram", {
      type: "scatter",
      data: { datasets },
      options: {
        plugins: {
          legend: { display: false },
          tooltip: {
            filter: (i) => i.dataset.label === "leaves",
            callbacks: {
              label: (i) => {
                const p = doc.point_labels[i.raw.leaf];
                return `cluster ${p.label}: ${paramsText(p.params)} (${p.tuples.length} tuples)`;
              },
            },
          },
        },
        scales: {
          x: { min: -0.5, max: n - 0.5, ticks: { display: false }, grid: { display: false }, title: { display: true, text: `${n} ${byPoint ? "parameter points" : "micro-clusters"}` } },
          y: { beginAtZero: true, title: { display: true, text: "merge distance" }, grid: { color: "#f0f1f4" } },
        },
      },
    });
  }

  function renderPca(doc) {
    const proj = doc.projection || [];
    const byLabel = new Map();
    (doc.point_labels || []).forEach((p, i) => {
      if (!proj[i]) return;
      if (!byLabel.has(p.label)) byLabel.set(p.label, []);
      byLabel.get(p.label).push({ x: proj[i][0], y: proj[i][1], point: i });
    });
    const datasets = [...byLabel.entries()].sort((a, b) => a[0] - b[0]).map(([l, pts]) => ({
      label: `cluster ${l}`, data: pts, backgroundColor: `${clusterColour(l)}cc`, borderColor: clusterColour(l),
      borderWidth: 1, pointRadius: pts.length > 500 ? 2 : 5, pointHoverRadius: 7,
    }));
    makeChart("chart-pca", {
      type: "scatter",
      data: { datasets },
      options: {
        plugins: {
          legend: { position: "top", align: "end", labels: { usePointStyle: true, boxWidth: 8, boxHeight: 8 } },
          tooltip: { callbacks: { label: (i) => { const p = doc.point_labels[i.raw.point]; return `cluster ${p.label}: ${paramsText(p.params)}`; } } },
        },
        scales: { x: { title: { display: true, text: "PC 1" }, grid: { color: "#f0f1f4" } }, y: { title: { display: true, text: "PC 2" }, grid: { color: "#f0f1f4" } } },
      },
    });
  }

  function rangeText(r) {
    if (!Array.isArray(r) || r.length !== 2) return esc(JSON.stringify(r));
    return r[0] === r[1] ? fmtNum(r[0]) : `${fmtNum(r[0])} – ${fmtNum(r[1])}`;
  }

  // Parameters with one value in every cluster (the sweep's constants): shown once, not per cluster.
  function fixedParams(clusters) {
    const fixed = new Map();
    const names = new Set(clusters.flatMap((c) => Object.keys(c.params_ranges || {})));
    for (const k of names) {
      const rs = clusters.map((c) => (c.params_ranges || {})[k]);
      if (rs.every((r) => Array.isArray(r) && r[0] === r[1] && r[0] === rs[0][0])) fixed.set(k, rs[0][0]);
    }
    return fixed;
  }

  function renderClusters(doc, clusters) {
    for (const c of state.seriesCharts) c.destroy();
    state.seriesCharts = [];
    const box = $("clusters");
    const fixed = clusters.length > 1 ? fixedParams(clusters) : new Map();
    $("fixed-params").textContent = fixed.size
      ? `The same in every cluster: ${[...fixed.keys()].sort().map((k) => `${k} ${fmtNum(fixed.get(k))}`).join(", ")}.`
      : "";
    box.innerHTML = clusters.map((c) => {
      const ranges = Object.keys(c.params_ranges || {}).filter((k) => !fixed.has(k)).sort().map((k) => `<tr><td>${esc(k)}</td><td>${rangeText(c.params_ranges[k])}</td></tr>`);
      const values = Object.keys(c.params_values || {}).sort().map((k) => `<tr><td>${esc(k)}</td><td>${[].concat(c.params_values[k]).map(esc).join(", ")}</td></tr>`);
      return `<div class="cluster" id="cluster-${esc(c.label)}" data-label="${esc(c.label)}" data-size="${esc(c.size)}" data-groups="${esc(c.groups)}" style="--c:${esc(clusterColour(c.label))}">
        <div class="head"><b>Cluster ${esc(c.label)}</b><span><span class="size" data-value="${esc(c.size)}">${fmtInt(c.size)}</span> tuples ·
          ${fmtInt(c.groups)} parameter points · representative <span class="rep" data-value="${esc(c.representative_tuple)}">#${esc(c.representative_tuple)}</span></span></div>
        <table>${ranges.join("")}${values.join("")}${ranges.length + values.length ? "" : "<tr><td>no parameters in the metadata</td></tr>"}</table>
        <div class="series-box" id="series-${esc(c.label)}" data-state="loading"><div class="noseries">loading the representative's series…</div></div>
      </div>`;
    }).join("");
    state.cardsGeneration = (state.cardsGeneration || 0) + 1;
    for (const c of clusters) loadSeries(c, state.cardsGeneration);
  }

  async function loadSeries(c, generation) {
    const { status, body } = await getJSON(`/v1/tuples/${encodeURIComponent(c.representative_tuple)}`);
    if (state.cardsGeneration !== generation) return;  // a newer document or cut replaced the cards
    const box = $(`series-${c.label}`);
    if (!box) return;
    if (status !== 200) {
      box.dataset.state = "error";
      box.innerHTML = `<div class="noseries">representative not readable: ${esc(body && body.error ? body.error : `HTTP ${status}`)}</div>`;
      return;
    }
    const series = Array.isArray(body.series) ? body.series.filter((s) => Array.isArray(s.values) && s.values.length) : [];
    if (!series.length) {
      box.dataset.state = "none";
      box.innerHTML = '<div class="noseries">no series stored (processor without preview)</div>';
      return;
    }
    box.dataset.state = "shown";
    box.dataset.series = String(series.length);
    box.innerHTML = '<div class="series"><canvas></canvas></div>';
    const colours = ["#4e79a7", "#e15759", "#59a14f", "#b07aa1", "#f28e2b"];
    const chart = new Chart(box.querySelector("canvas"), {
      type: "line",
      data: {
        labels: series[0].values.map((_, i) => i),
        datasets: series.map((s, i) => lineDataset(s.name, colours[i % colours.length], s.values, { borderWidth: 1.3, yAxisID: i === 0 ? "y" : "y1" })),
      },
      options: {
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "top", align: "end" }, tooltip: { callbacks: { title: (i) => (i.length ? `sample ${i[0].label}` : "") } } },
        scales: {
          x: { ticks: { maxTicksLimit: 5, maxRotation: 0 }, grid: { display: false }, title: { display: true, text: `representative #${c.representative_tuple}: summed over voxels, per sample` } },
          y: { title: { display: true, text: series[0].name }, grid: { color: "#f0f1f4" } },
          y1: { display: series.length > 1, position: "right", grid: { display: false }, title: { display: series.length > 1, text: series.length > 1 ? series[1].name : "" } },
        },
      },
    });
    state.seriesCharts.push(chart);
  }

  // ---- the loop ----
  function setLive(ok) {
    const live = $("live");
    if (ok) {
      state.lastOk = Date.now();
      live.dataset.state = "ok";
      $("live-text").textContent = `live · updated ${fmtClock(state.lastOk)}`;
    } else {
      live.dataset.state = state.lastOk ? "down" : "down";
      $("live-text").textContent = state.lastOk
        ? `master unreachable since ${fmtClock(state.lastOk)}: showing the last data`
        : "master unreachable";
    }
  }

  async function tick() {
    try {
      await Promise.all([refreshStatus(), refreshHistory()]);
      setLive(true);
      await Promise.all([refreshKnowledge().catch(() => {}), refreshFailures().catch(() => {})]);
    } catch (e) {
      setLive(false);
    }
    document.body.dataset.refreshed = String(Date.now());
    setTimeout(tick, REFRESH_MS);
  }

  for (const b of document.querySelectorAll(".window button")) {
    b.addEventListener("click", () => {
      state.windowMin = Number(b.dataset.window);
      for (const o of document.querySelectorAll(".window button")) o.classList.toggle("on", o === b);
      drawSystem();
    });
  }
  initSystemCharts();
  tick();
})();
