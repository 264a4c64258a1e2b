/*
 * gsai-load HTML report: renders the run's data (the JSON result embedded in #gsai-data, plus
 * latency distributions computed from its HDR histograms) into tables and GsaiCharts charts.
 * Plain JavaScript, no network. Every text from the data goes in through textContent.
 */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("gsai-data").textContent);
  var r = data.result;
  var root = document.getElementById("report");
  var fmt = GsaiCharts.format;

  /* ---------- DOM helpers ---------- */

  function h(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }

  function add(parent, child) {
    parent.appendChild(child);
    return child;
  }

  function num(v, digits) {
    if (typeof v !== "number" || !isFinite(v)) return "–";
    return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function pct(fraction) {
    return num(fraction * 100, 2) + "%";
  }

  function when(unixS) {
    var d = new Date(unixS * 1000);
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function seconds(s) {
    if (s < 60) return num(s, 1) + " s";
    var m = Math.floor(s / 60);
    return m + " min " + num(s - m * 60, 0) + " s";
  }

  /* A table from column specs: {label, get(row) -> text, cls?}. */
  function table(columns, rows, rowClass) {
    var t = h("table");
    var head = add(t, h("thead"));
    var tr = add(head, h("tr"));
    columns.forEach(function (c) {
      add(tr, h("th", { text: c.label, cls: c.cls || "", title: c.title || "" }));
    });
    var body = add(t, h("tbody"));
    rows.forEach(function (row) {
      var line = add(body, h("tr", { cls: rowClass ? rowClass(row) : "" }));
      columns.forEach(function (c) {
        var v = c.get(row);
        var td = add(line, h("td", { cls: c.cls || "" }));
        if (v instanceof Node) td.appendChild(v);
        else {
          td.textContent = v === null || v === undefined ? "–" : String(v);
          if (td.textContent === "–") td.className += " na";
        }
      });
    });
    return h("div", { cls: "scroll" }, [t]);
  }

  function ms(summary, key) {
    return summary && summary.count > 0 ? num(summary[key], summary[key] >= 100 ? 0 : 1) : null;
  }

  /* ---------- header and verdict ---------- */

  var plan = r.plan;
  var s = r.summary;
  var phases = data.phases || { markers: [], bands: [] };
  var staged = plan.stages && plan.stages.length;
  var stageUnit = plan.rate !== null && plan.rate !== undefined ? "req/s" : "users";
  var failedThresholds = (r.thresholds || []).filter(function (t) { return !t.passed; });
  var aborted = r.threshold_abort || null;

  add(root, h("h1", { text: "gsai-load report: " + plan.model }));
  add(root, h("p", { cls: "sub" }, [
    "Target ", h("code", { text: plan.host }), " (" + plan.api + " API) · started " + when(r.started_unix_s) +
      " · ran " + seconds(r.duration_s) + " · ended by " + String(r.stop_reason).replace(/_/g, " ") +
      " · " + r.tool.name + " " + r.tool.version,
  ]));

  var problems = [];
  if (aborted) problems.push("stopped early: threshold " + aborted.expr + " breached");
  if (failedThresholds.length) problems.push(failedThresholds.length + " of " + r.thresholds.length + " thresholds failed");
  if (s.failures > 0) problems.push(s.failures + " requests failed (" + pct(s.fail_ratio) + ")");
  var verdictText = problems.length ? "FAILED" : "PASSED";
  var detail = problems.length ? problems.join(" · ")
    : (r.thresholds && r.thresholds.length ? "all " + r.thresholds.length + " thresholds met, " : "") + "no failed requests";
  add(root, h("div", { cls: "verdict " + (problems.length ? "fail" : "pass") }, [verdictText, h("small", { text: detail })]));

  /* ---------- headline cards ---------- */

  var m = r.metrics;
  var cards = add(root, h("div", { cls: "cards" }));
  function card(label, value, unit, note, bad) {
    add(cards, h("div", { cls: "card" + (bad ? " bad" : "") }, [
      h("div", { cls: "label", text: label }),
      h("div", { cls: "value" }, [value, unit ? h("small", { text: unit }) : null]),
      note ? h("div", { cls: "note", text: note }) : null,
    ]));
  }
  card("Requests", num(s.requests, 0), "", s.successes + " ok · " + s.cancelled + " cancelled at stop");
  card("Failures", num(s.failures, 0), "", pct(s.fail_ratio) + " of requests", s.failures > 0);
  card("Throughput", num(s.rps, 2), "req/s", "first start to last end");
  card("Output tokens", num(s.output_tokens_per_s, 1), "tok/s", num(s.output_tokens, 0) + " tokens");
  if (plan.slo && plan.slo.length) {
    card("Goodput", num(s.goodput, 2), "req/s", pct(s.good_fraction) + " met " + data.slo);
  }
  card("TTFT p50 / p95", (ms(m.ttft_ms, "p50") || "–") + " / " + (ms(m.ttft_ms, "p95") || "–"), "ms");
  card("TPOT p50", ms(m.tpot_ms, "p50") || "–", "ms", "ITL p50 " + (ms(m.itl_ms, "p50") || "–") + " ms");
  card("E2E p50 / p95", (ms(m.e2e_ms, "p50") || "–") + " / " + (ms(m.e2e_ms, "p95") || "–"), "ms");
  if (staged) {
    var peak = Math.max.apply(null, plan.stages.map(function (st) { return st.target; }));
    card("Stages", num(plan.stages.length, 0), "", "peak " + num(peak, peak % 1 ? 2 : 0) + " " + stageUnit);
  } else {
    card("Users", num(plan.users, 0), "", "spawn " + plan.spawn_rate + "/s");
  }
  var g = r.generator;
  if (g) {
    var cores = g.cores ? g.cores + (g.cores === 1 ? " core" : " cores") : (g.workers || []).length + " workers";
    card("Load generator", g.verdict, "", "CPU p95 " + num(g.cpu_p95, 0) + "% of " + cores + " · runtime lag p99 " +
      num(g.loop_lag_p99_ms, 1) + " ms" + (g.schedule_lag_p99_ms !== undefined ? " · schedule lag p99 " + num(g.schedule_lag_p99_ms, 1) + " ms" : ""),
      g.verdict !== "ok");
  }
  if (s.warmup_excluded > 0) {
    card("Warm-up", num(s.warmup_excluded, 0), "excluded", "requests started in the first " + plan.warmup + ", left out of every figure");
  }

  if (g && g.verdict !== "ok") {
    var advice = g.verdict === "saturated"
      ? "The load generator was the bottleneck: latencies include its own delay and throughput is its limit, not the server's."
      : "The load generator was busy: latencies may include a few milliseconds of its own delay.";
    var busy = (g.workers || []).filter(function (w) { return w.verdict !== "ok"; }).map(function (w) {
      return w.worker + " (" + w.verdict + ")";
    });
    add(root, h("p", { cls: "warn", text: advice + " Use fewer users per process or add workers." +
      (busy.length ? " Workers: " + busy.join(", ") + "." : "") }));
  }

  /* ---------- repeated runs (--repeat) ---------- */

  var rep = r.repeats;
  if (rep && data.repeat_figures) {
    add(root, h("h2", { text: "Repeated runs: " + rep.n + " of " + rep.asked }));
    add(root, h("p", { cls: "sub", text: "Each figure is the " + rep.shown + ". The other sections pool the requests of every run." }));
    var fmt = function (v) { return v === null || v === undefined ? null : num(v, Math.abs(v) >= 100 ? 0 : 2); };
    var repCols = [
      { label: "Metric", get: function (f) { return f.label + " (" + f.unit + ")"; } },
      { label: "mean ± 95% CI", cls: "num", get: function (f) {
        var e = rep.metrics[f.key];
        if (!e) return null;
        return e.ci95_high === null || e.ci95_high === undefined ? fmt(e.mean) : fmt(e.mean) + " ± " + fmt((e.ci95_high - e.ci95_low) / 2);
      } },
      { label: "95% CI", cls: "num", get: function (f) {
        var e = rep.metrics[f.key];
        return e && e.ci95_low !== null && e.ci95_low !== undefined ? "[" + fmt(e.ci95_low) + ", " + fmt(e.ci95_high) + "]" : null;
      } },
      { label: "stddev", cls: "num", get: function (f) { var e = rep.metrics[f.key]; return e ? fmt(e.stddev) : null; } },
    ];
    rep.runs.forEach(function (run, i) {
      repCols.push({ label: "run " + (i + 1), cls: "num", get: function (f) { return fmt(run[f.key]); } });
    });
    add(root, table(repCols, data.repeat_figures.filter(function (f) { return rep.metrics[f.key]; })));
  }

  /* ---------- thresholds ---------- */

  if ((r.thresholds && r.thresholds.length) || aborted) {
    add(root, h("h2", { text: "Thresholds" }));
    function withUnit(v, unit) {
      if (v === null || v === undefined) return null;
      return fmt(v, unit);
    }
    var rows = (r.thresholds || []).slice();
    add(root, table([
      { label: "Result", cls: "text", get: function (t) {
        return h("span", { cls: t.passed ? "pass-mark" : "fail-mark", text: t.passed ? "✓ passed" : "✗ failed" });
      } },
      { label: "Threshold", cls: "text", get: function (t) { return t.expr; } },
      { label: "Measured", get: function (t) { return t.measured === null ? "no data" : withUnit(t.measured, t.unit); } },
      { label: "Limit", get: function (t) { return t.op + " " + withUnit(t.limit, t.unit); } },
    ], rows));
    if (aborted) {
      add(root, h("p", { cls: "warn", text: "The test was stopped early (--threshold-abort): " + aborted.expr +
        " measured " + (aborted.measured === null ? "no data" : fmt(aborted.measured, aborted.unit)) + " while running." }));
    }
  }

  /* ---------- charts over time ---------- */

  add(root, h("h2", { text: "Over time" }));
  var notes = [];
  if (phases.markers.length) notes.push("dashed lines: stage starts, labelled with the stage's target");
  if (phases.bands.length) notes.push("shaded: the warm-up, whose requests are excluded from the statistics");
  if (notes.length) add(root, h("p", { cls: "sub", text: notes.join("; ").replace(/^./, function (c) { return c.toUpperCase(); }) + "." }));
  var tl = r.timeline || [];
  function series(name, key, color, dash) {
    // A latency of exactly 0 means "nothing finished in the window": leave a gap, not a dip.
    var latency = /_ms$/.test(key);
    return { name: name, color: color, dash: !!dash, points: tl.map(function (p) {
      return [p.unix_s, latency && p[key] === 0 ? null : p[key]];
    }) };
  }
  var grid = add(root, h("div", { cls: "grid2" }));
  function panel() {
    return add(grid, h("div", { cls: "panel" }));
  }
  /* A time chart with the stage starts and the warm-up marked; the axis begins at the test's
     start, where the first stage and the warm-up begin, a second before the first point. */
  function timeChart(options) {
    if (phases.markers.length || phases.bands.length) {
      options.markers = phases.markers;
      options.bands = phases.bands;
      options.xMin = phases.started_unix_s;
    }
    return GsaiCharts.line(panel(), options);
  }
  timeChart({ title: "Users", yUnit: "users", series: [series("running users", "users", "#2ca02c")] });
  timeChart({
    title: "Requests and failures per second", yUnit: "req/s",
    series: [series("requests/s", "rps", "#1f77b4"), series("failures/s", "fps", "#d62728")],
  });
  timeChart({
    title: "E2E latency (all finished requests, recent window)", yUnit: "ms",
    series: [series("p50", "e2e_p50_ms", "#1f77b4"), series("p95", "e2e_p95_ms", "#ff7f0e")],
  });
  timeChart({
    title: "Time to first token (recent window)", yUnit: "ms",
    series: [series("p50", "ttft_p50_ms", "#9467bd"), series("p95", "ttft_p95_ms", "#e377c2")],
  });
  timeChart({
    title: "Output tokens per second", yUnit: "tok/s",
    series: [series("output tokens/s", "output_tokens_per_s", "#17becf")],
  });
  timeChart({
    title: "Finished requests (cumulative)", yUnit: "requests",
    series: [series("requests", "total_requests", "#1f77b4"), series("failures", "total_failures", "#d62728")],
  });

  /* ---------- the server's own metrics (--server-metrics) ---------- */

  if (data.server) {
    add(root, h("h2", { text: "Server metrics" }));
    add(root, h("p", { cls: "sub", text: "Scraped from the server's Prometheus endpoint during the test (--server-metrics), " +
      "on the same time axis as the charts above; every series scraped is in the JSON result (server_metrics)." }));
    GsaiServerMetrics.render(add(root, h("div")), data.server, {
      chart: function (panel, options) {
        // The test's own span, as the charts above (the last scrape is at the very end).
        options.xMin = r.started_unix_s;
        options.xMax = r.started_unix_s + r.duration_s;
        options.markers = phases.markers;
        options.bands = phases.bands;
        return GsaiCharts.line(panel, options);
      },
      clientTtft: [series("client p50", "ttft_p50_ms", "#9467bd"), series("client p95", "ttft_p95_ms", "#e377c2")],
    });
  }

  /* ---------- latency distributions ---------- */

  add(root, h("h2", { text: "Latency distributions" }));
  add(root, h("p", { cls: "sub", text: "Value at each percentile, from the run's HDR histograms (3 significant digits). The axis stretches the tail: 90%, 99%, 99.9%…" }));
  var dgrid = add(root, h("div", { cls: "grid2" }));
  (data.distributions || []).forEach(function (d) {
    var p = add(dgrid, h("div", { cls: "panel" }));
    GsaiCharts.line(p, { title: d.title, yUnit: d.unit, xType: "percentile", series: d.series });
  });

  /* ---------- stats tables ---------- */

  add(root, h("h2", { text: "Request statistics (Locust's columns)" }));
  var reqRows = (r.requests || []).slice();
  reqRows.push(Object.assign({ method: "", name: "Aggregated", total: true }, s, { metrics: m }));
  add(root, table([
    { label: "Type", cls: "text", get: function (x) { return x.method; } },
    { label: "Name", cls: "text", get: function (x) { return x.name; } },
    { label: "# Requests", get: function (x) { return num(x.requests, 0); } },
    { label: "# Fails", get: function (x) { return num(x.failures, 0) + " (" + pct(x.fail_ratio) + ")"; } },
    { label: "Median (ms)", get: function (x) { return ms(x.metrics.response_time_ms, "p50"); } },
    { label: "90%ile (ms)", get: function (x) { return ms(x.metrics.response_time_ms, "p90"); } },
    { label: "99%ile (ms)", get: function (x) { return ms(x.metrics.response_time_ms, "p99"); } },
    { label: "Average (ms)", get: function (x) { return ms(x.metrics.response_time_ms, "mean"); } },
    { label: "Min (ms)", get: function (x) { return ms(x.metrics.response_time_ms, "min"); } },
    { label: "Max (ms)", get: function (x) { return ms(x.metrics.response_time_ms, "max"); } },
    { label: "Req/s", get: function (x) { return num(x.rps, 2); } },
    { label: "Cancelled", get: function (x) { return num(x.cancelled, 0); } },
  ], reqRows, function (x) { return x.total ? "total" : ""; }));

  add(root, h("h2", { text: "Metrics (Aggregated)" }));
  // Every metric of the catalogue (data.catalogue, in report order): [label, summary key, note];
  // the open loop's only when they have samples.
  var llm = (data.catalogue || []).filter(function (c) {
    return m[c.summary_key] && (!c.open_loop_only || m[c.summary_key].count > 0);
  }).map(function (c) {
    return [c.label + (c.unit === "tokens" ? "" : " (" + c.unit + ")"), c.summary_key, c.description + " (" + c.covers + ")"];
  });
  function stat(key) {
    return function (row) { var v = m[row[1]]; return v.count > 0 ? num(v[key], v[key] >= 100 ? 0 : 2) : null; };
  }
  add(root, table([
    { label: "Metric", cls: "text", get: function (row) { return row[0]; } },
    { label: "", cls: "text muted", get: function (row) { return row[2]; } },
    { label: "Count", get: function (row) { return num(m[row[1]].count, 0); } },
    { label: "Min", get: stat("min") },
    { label: "Mean", get: stat("mean") },
    { label: "p50", get: stat("p50") },
    { label: "p90", get: stat("p90") },
    { label: "p95", get: stat("p95") },
    { label: "p99", get: stat("p99") },
    { label: "Max", get: stat("max") },
  ], llm));

  if (reqRows.length > 2) {
    add(root, h("h2", { text: "LLM metrics by request" }));
    add(root, table([
      { label: "Type", cls: "text", get: function (x) { return x.method; } },
      { label: "Name", cls: "text", get: function (x) { return x.name; } },
      { label: "TTFT p50", get: function (x) { return ms(x.metrics.ttft_ms, "p50"); } },
      { label: "TTFT p95", get: function (x) { return ms(x.metrics.ttft_ms, "p95"); } },
      { label: "TPOT p50", get: function (x) { return ms(x.metrics.tpot_ms, "p50"); } },
      { label: "ITL p50", get: function (x) { return ms(x.metrics.itl_ms, "p50"); } },
      { label: "E2E p95", get: function (x) { return ms(x.metrics.e2e_ms, "p95"); } },
      { label: "Output tok/s", get: function (x) { return num(x.output_tokens_per_s, 1); } },
      { label: "Goodput (req/s)", get: function (x) { return num(x.goodput, 2); } },
    ], reqRows, function (x) { return x.total ? "total" : ""; }));
  }

  var sources = Object.keys(s.token_sources || {}).map(function (k) { return k + " " + s.token_sources[k]; });
  add(root, h("p", { cls: "sub", text: "Output-token counts came from: " + (sources.length ? sources.join(", ") : "–") +
    " (usage = the server's usage.completion_tokens; tokenizer = cl100k_base count of the text; events = token-bearing SSE events)." }));
  if (plan.slo && plan.slo.length) {
    add(root, h("p", { cls: "sub", text: "Goodput: " + num(s.good, 0) + " of " + num(s.requests, 0) + " finished requests (" +
      pct(s.good_fraction) + ") succeeded and met every SLO (" + data.slo + "); failed requests count as missing it. " +
      num(s.goodput, 2) + " good requests/s." }));
  }

  /* ---------- failures ---------- */

  add(root, h("h2", { text: "Failures" }));
  if (!r.failures || !r.failures.length) {
    add(root, h("p", { cls: "sub", text: "No failed requests." }));
  } else {
    add(root, h("h3", { text: "Failures by kind" }));
    add(root, table([
      { label: "# Failures", get: function (k) { return num(k.count, 0); } },
      { label: "Kind", cls: "text", get: function (k) { return k.kind; } },
      { label: "Meaning", cls: "msg", get: function (k) { return k.meaning; } },
    ], data.failure_kinds || []));
    add(root, table([
      { label: "# Occurrences", get: function (f) { return num(f.count, 0); } },
      { label: "Method", cls: "text", get: function (f) { return f.method; } },
      { label: "Name", cls: "text", get: function (f) { return f.name; } },
      { label: "Kind", cls: "text", get: function (f) { return f.kind; } },
      { label: "Error", cls: "msg", get: function (f) { return f.message; } },
      { label: "First seen", get: function (f) { return when(f.first_seen_unix_s); } },
      { label: "Last seen", get: function (f) { return when(f.last_seen_unix_s); } },
    ], r.failures));
  }

  /* ---------- plan ---------- */

  add(root, h("h2", { text: "Run plan" }));
  function show(key, v) {
    if (v === null || v === undefined) return "–";
    if (key === "wait" && v.kind) {
      var args = Object.keys(v).filter(function (k) { return k !== "kind"; }).map(function (k) { return v[k]; });
      return v.kind + "(" + args.join(", ") + ")";
    }
    if (key === "slo") return data.slo || "–";
    if (key === "stages" && v.length) {
      return v.map(function (st) {
        return "to " + st.target + " " + (st.target === 1 && stageUnit === "users" ? "user" : stageUnit) + " over " + st.duration;
      }).join(", then ") +
        " (linear ramps from " + (stageUnit === "users" ? "0" : plan.rate) + ")";
    }
    if (key === "warmup" && v) {
      return v + ": requests that started in it ran but are excluded from every figure (" + num(s.warmup_excluded, 0) + " requests)";
    }
    if (typeof v === "object") return JSON.stringify(v, null, 1).replace(/\n\s*/g, " ");
    return String(v);
  }
  var dl = add(root, h("dl", { cls: "plan" }));
  Object.keys(plan).forEach(function (k) {
    add(dl, h("dt", { text: k.replace(/_/g, " ") }));
    add(dl, h("dd", { text: show(k, plan[k]) }));
  });

  add(root, h("footer", { text: "Generated by " + r.tool.name + " " + r.tool.version + " on " + when(data.generated_unix_s) +
    " · result schema v" + r.schema_version + " · rebuild with: gsai-load report RESULT.json --html FILE" }));
})();
