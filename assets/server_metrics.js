/*
 * GsaiServerMetrics: the `--server-metrics` section of the HTML report and of the web UI: the
 * server's own well-known series (requests running and waiting, KV-cache usage, its TTFT
 * histogram as p50/p99 over time) on the test's time axis, the client's TTFT beside the
 * server's, and the scrape failures. Plain JavaScript on top of GsaiCharts (assets/charts.js);
 * every text from the data goes in through textContent.
 *
 * API
 *   GsaiServerMetrics.render(container, data, opts)   clears `container` and draws into it
 *     data: { overviews:   [{ url, engine, running, waiting, kv_cache_pct, ttft_p50_ms, ttft_p99_ms,
 *                             ttft_source }]            ([[unix_s, value], ...] each; see observe::known)
 *             comparisons: [{ url, source, server_count, client_p50_ms, client_p99_ms,
 *                             server_p50_ms, server_p99_ms, note }]
 *             errors:      [{ url, cause, count, first_unix_s, last_unix_s }] }
 *     opts: { chart(panel, options) -> chart   draws one chart (default GsaiCharts.line); the report
 *                                              passes one that marks stages and the warm-up
 *             clientTtft: [series, ...]        client TTFT series drawn (dashed) on the TTFT chart }
 */
(function (global) {
  "use strict";

  var CSS =
    ".gsai-sm-grid{display:grid;grid-template-columns:1fr 1fr;gap:8px 28px;margin-bottom:10px}" +
    "@media (max-width:900px){.gsai-sm-grid{grid-template-columns:1fr}}" +
    ".gsai-sm-panel{background:#fff;border:1px solid #e2e5ea;border-radius:6px;padding:12px 14px 2px;min-width:0}" +
    ".gsai-sm-endpoint{font-weight:600;margin:14px 0 6px}" +
    ".gsai-sm-note{color:#5d6675;margin:4px 0 12px}" +
    ".gsai-sm-table{border-collapse:collapse;background:#fff;border:1px solid #e2e5ea;margin:4px 0 8px;font-variant-numeric:tabular-nums}" +
    ".gsai-sm-table th,.gsai-sm-table td{padding:5px 12px;border-bottom:1px solid #e2e5ea;text-align:right;white-space:nowrap}" +
    ".gsai-sm-table th{background:#eef1f5;font-size:12.5px}" +
    ".gsai-sm-table td.text,.gsai-sm-table th.text{text-align:left;white-space:normal}" +
    ".gsai-sm-warn{color:#9a6700}";
  var styled = false;

  function injectStyle() {
    if (styled || typeof document === "undefined") return;
    styled = true;
    var s = document.createElement("style");
    s.textContent = CSS;
    document.head.appendChild(s);
  }

  function el(tag, cls, text, parent) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function ms(v) {
    return typeof v === "number" && isFinite(v) ? GsaiCharts.format(v, "ms") : "–";
  }

  /* A server quantile with the histogram bucket it lies in: "150 ms (140–160)". */
  function serverMs(v, bucket) {
    if (!bucket) return ms(v);
    var hi = typeof bucket[1] === "number" && isFinite(bucket[1]) ? Math.round(bucket[1]) : "∞";
    return ms(v) + " (" + Math.round(bucket[0]) + "–" + hi + ")";
  }

  function gap(a, b, bucket) {
    if (typeof a !== "number" || typeof b !== "number") return "–";
    var d = a - b;
    var text = (d >= 0 ? "+" : "−") + GsaiCharts.format(Math.abs(d), "ms");
    var inBucket = bucket && a > bucket[0] && (typeof bucket[1] !== "number" || a <= bucket[1]);
    return inBucket ? text + " (in bucket)" : text;
  }

  function table(parent, head, rows) {
    var t = el("table", "gsai-sm-table", null, parent);
    var tr = el("tr", null, null, el("thead", null, null, t));
    head.forEach(function (hd, i) { el("th", i === 0 ? "text" : "", hd, tr); });
    var body = el("tbody", null, null, t);
    rows.forEach(function (row) {
      var r = el("tr", null, null, body);
      row.forEach(function (c, i) { el("td", i === 0 ? "text" : "", c, r); });
    });
    return t;
  }

  function when(unixS) {
    return new Date(unixS * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function render(container, data, opts) {
    injectStyle();
    opts = opts || {};
    var draw = opts.chart || function (panel, o) { return GsaiCharts.line(panel, o); };
    (container._gsaiCharts || []).forEach(function (c) { GsaiCharts.destroy(c); });
    container._gsaiCharts = [];
    while (container.firstChild) container.removeChild(container.firstChild);
    data = data || {};
    var overviews = data.overviews || [], comparisons = data.comparisons || [], errors = data.errors || [];

    comparisons.forEach(function (c) {
      el("div", "gsai-sm-endpoint", "TTFT, client vs server (" + c.source + ", " +
        Math.round(c.server_count).toLocaleString("en-US") + " first tokens counted by " + c.url + ")", container);
      table(container, ["", "p50", "p99"], [
        ["client (gsai-load)", ms(c.client_p50_ms), ms(c.client_p99_ms)],
        ["server (its histogram)", serverMs(c.server_p50_ms, c.server_p50_bucket_ms), serverMs(c.server_p99_ms, c.server_p99_bucket_ms)],
        ["gap", gap(c.client_p50_ms, c.server_p50_ms, c.server_p50_bucket_ms), gap(c.client_p99_ms, c.server_p99_ms, c.server_p99_bucket_ms)],
      ]);
      el("p", "gsai-sm-note", c.note.charAt(0).toUpperCase() + c.note.slice(1) + ". The server's figures are interpolated within the histogram bucket shown in brackets (ms); " +
        "a gap inside that bucket is below what the histogram can resolve.", container);
    });

    overviews.forEach(function (o) {
      el("div", "gsai-sm-endpoint", o.engine + " at " + o.url, container);
      var grid = el("div", "gsai-sm-grid", null, container);
      function chart(options) {
        var c = draw(el("div", "gsai-sm-panel", null, grid), options);
        if (c) container._gsaiCharts.push(c);
      }
      if ((o.running || []).length || (o.waiting || []).length) {
        chart({ title: "Requests on the server", yUnit: "requests", series: [
          { name: "running", color: "#2ca02c", points: o.running || [] },
          { name: "waiting (queued)", color: "#d62728", points: o.waiting || [] },
        ] });
      }
      if ((o.kv_cache_pct || []).length) {
        chart({ title: "KV-cache usage", yUnit: "%", series: [
          { name: "KV cache used", color: "#8c564b", points: o.kv_cache_pct },
        ] });
      }
      if (o.ttft_source) {
        var series = [
          { name: "server p50", color: "#1f77b4", points: o.ttft_p50_ms || [] },
          { name: "server p99", color: "#ff7f0e", points: o.ttft_p99_ms || [] },
        ].concat((opts.clientTtft || []).map(function (s) { return Object.assign({ dash: true }, s); }));
        chart({ title: "Time to first token: server (" + o.ttft_source + ") and client", yUnit: "ms", series: series });
      }
    });

    if (!overviews.length && !comparisons.length) {
      el("p", "gsai-sm-note", "No well-known LLM-server series (vLLM, SGLang, TGI, llama.cpp) were scraped" +
        (errors.length ? "." : "; every series scraped is in the JSON result's server_metrics."), container);
    }
    if (errors.length) {
      el("div", "gsai-sm-endpoint gsai-sm-warn", "Scrape problems (the test went on)", container);
      table(container, ["Endpoint and cause", "Scrapes", "First", "Last"], errors.map(function (e) {
        return [e.url + ": " + e.cause, String(e.count), when(e.first_unix_s), when(e.last_unix_s)];
      }));
    }
  }

  global.GsaiServerMetrics = { render: render };
})(typeof window !== "undefined" ? window : this);
