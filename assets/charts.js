/*
 * GsaiCharts: small, dependency-free SVG line charts for gsai-load (the HTML report and the web UI).
 * Plain JavaScript, no build step, no network. Include it with a <script> tag (or inline it); it
 * defines one global, `GsaiCharts`, and injects its own small stylesheet once.
 *
 * API
 *   const chart = GsaiCharts.line(container, options)
 *       container  an element, or the id of one; the chart fills its width (redrawn on window resize).
 *       options    {
 *         title:   "Requests per second",         shown above the plot
 *         yUnit:   "req/s",                        unit of y: shown on the axis and in the hover box
 *                                                  ("ms", "req/s", "tok/s", "users", "%", "" ...)
 *         xType:   "time" | "number" | "percentile"
 *                  time:       x is seconds since the Unix epoch, labelled HH:MM:SS (local time); default
 *                  number:     plain numbers, labelled with xUnit
 *                  percentile: x is 0..100; the axis stretches the tail (50, 90, 99, 99.9, 99.99 ...)
 *         xUnit:   "s",                            axis label for xType "number"
 *         height:  260,                            pixels (default 260)
 *         yMin:    0,                              lower bound of the y axis (default 0; null = from data)
 *         yMax:    null,                           upper bound (default: from data)
 *         xMin:    null,                           the x axis reaches at least this far left (time and
 *         xMax:    null,                           number charts; default null: from the data alone)
 *         maxPoints: 0,                            GsaiCharts.append keeps at most this many points (0 = all)
 *         series:  [{ name: "p95", color: "#d62728", points: [[x, y], ...], dash: false }, ...]
 *         markers: [{ x: 1700000030, label: "→ 50 users", color: "#666" }, ...]
 *                  vertical dashed lines (e.g. where a load stage starts); colour optional
 *         bands:   [{ from: 1700000000, to: 1700000030, label: "warm-up (excluded)", color: "#e6a23c" }, ...]
 *                  shaded spans (e.g. a warm-up period); colour optional
 *       }
 *       A y of null (or NaN) leaves a gap in the line. Colours default to GsaiCharts.colors in order.
 *       Markers and bands are drawn behind the series, in x units (Unix seconds on time charts). They
 *       never widen the axis (a live chart shows a marker once its data reaches it; set xMin/xMax
 *       to show more) and are clipped to it. Their labels sit in rows above the plot, clear of the
 *       data and of the legend; a label that fits no row is left out, and the hover box names the
 *       bands and the latest marker at the pointer in any case.
 *   GsaiCharts.update(chart, series)      replaces the series (same shape as options.series) and redraws;
 *                                         series hidden from the legend stay hidden (matched by name).
 *   GsaiCharts.append(chart, x, values)   adds one point to each series named in values ({name: y}),
 *                                         creating a series on first sight; for live updates each second.
 *   GsaiCharts.setOptions(chart, options) changes the options given (any above but series, e.g.
 *                                         { markers: [...], bands: [...], xMin: t0 }) and redraws.
 *   GsaiCharts.resize(chart)              redraws at the container's current width.
 *   GsaiCharts.destroy(chart)             removes the chart from its container.
 *   GsaiCharts.format(value, unit)        number formatting used by axes and the hover box ("1,234 ms").
 *   GsaiCharts.colors                     the default palette.
 *
 * Interaction: moving the pointer over the plot shows a guide line and every visible series' value at
 * the nearest x; clicking a legend entry hides or shows that series.
 *
 * Example
 *   const c = GsaiCharts.line("rps", { title: "Throughput", yUnit: "req/s",
 *     series: [{ name: "requests/s", points: [[1700000000, 12.5], [1700000001, 13.1]] },
 *              { name: "failures/s", color: "#d62728", points: [[1700000000, 0], [1700000001, 0.2]] }] });
 *   GsaiCharts.append(c, 1700000002, { "requests/s": 12.9, "failures/s": 0 });
 *   GsaiCharts.setOptions(c, { xMin: 1700000000, bands: [{ from: 1700000000, to: 1700000001, label: "warm-up" }],
 *     markers: [{ x: 1700000000, label: "→ 10 users" }] });
 */
(function (global) {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  var MARGIN = { left: 64, right: 18, top: 10, bottom: 40 };
  var MARKER_COLOR = "#6b6b6b", BAND_COLOR = "#e6a23c";
  var LABEL_ROW = 14, LABEL_ROWS = 3, LABEL_GAP = 3;
  var charts = [];

  var CSS =
    ".gsai-chart{position:relative;font:12px/1.3 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;margin:0 0 18px}" +
    ".gsai-chart-title{font-weight:600;font-size:14px;margin:0 0 4px}" +
    ".gsai-chart-legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:0 0 4px;user-select:none}" +
    ".gsai-chart-legend span{cursor:pointer;white-space:nowrap}" +
    ".gsai-chart-legend span.off{opacity:.35;text-decoration:line-through}" +
    ".gsai-chart-legend i{display:inline-block;width:14px;height:3px;margin:0 5px 3px 0;vertical-align:middle}" +
    ".gsai-chart svg{display:block;overflow:visible}" +
    ".gsai-chart .grid line{stroke:#e4e4e4}" +
    ".gsai-chart .axis text{fill:#555;font-size:11px}" +
    ".gsai-chart .axis-label{fill:#333;font-size:11px;font-weight:600}" +
    ".gsai-chart .empty{fill:#888;font-size:13px}" +
    ".gsai-chart .phase-label{font-size:11px;font-weight:600}" +
    ".gsai-chart-tip .phase{color:#555;font-style:italic;margin-top:2px}" +
    ".gsai-chart-tip{position:absolute;pointer-events:none;background:rgba(255,255,255,.96);border:1px solid #bbb;" +
    "border-radius:4px;padding:5px 8px;box-shadow:0 2px 6px rgba(0,0,0,.15);white-space:nowrap;display:none;z-index:5}" +
    ".gsai-chart-tip b{display:block;margin-bottom:2px}" +
    ".gsai-chart-tip i{display:inline-block;width:9px;height:9px;border-radius:2px;margin-right:5px}";

  function injectStyle() {
    if (typeof document === "undefined" || document.getElementById("gsai-charts-style")) return;
    var s = document.createElement("style");
    s.id = "gsai-charts-style";
    s.textContent = CSS;
    (document.head || document.documentElement).appendChild(s);
  }

  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  function isNum(v) {
    return typeof v === "number" && isFinite(v);
  }

  /* ---------- number and time formatting ---------- */

  function group(intText) {
    return intText.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function fixed(v, digits) {
    var t = Math.abs(v).toFixed(digits);
    var parts = t.split(".");
    var s = group(parts[0]) + (parts[1] ? "." + parts[1] : "");
    return (v < 0 && Number(t) !== 0 ? "-" : "") + s;
  }

  function format(v, unit) {
    if (!isNum(v)) return "–";
    var a = Math.abs(v);
    var digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a === 0 ? 0 : 3;
    var s = fixed(v, digits);
    if (!unit) return s;
    return unit === "%" ? s + "%" : s + " " + unit;
  }

  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function clock(unixS, withSeconds) {
    var d = new Date(unixS * 1000);
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + (withSeconds ? ":" + pad2(d.getSeconds()) : "");
  }

  /* ---------- scales ---------- */

  function niceStep(span, count) {
    var raw = span / Math.max(count, 1);
    var mag = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var n = raw / mag;
    return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * mag;
  }

  function linearTicks(min, max, count) {
    if (max <= min) max = min + 1;
    var step = niceStep(max - min, count);
    var start = Math.floor(min / step) * step;
    var end = Math.ceil(max / step) * step;
    var ticks = [];
    for (var v = start; v <= end + step / 2; v += step) ticks.push(Math.round(v / step) * step);
    return { min: start, max: end, ticks: ticks, step: step };
  }

  /* decimals that show every tick of a given step distinctly, and no more */
  function stepDigits(step) {
    for (var d = 0; d < 6; d++) {
      var scaled = step * Math.pow(10, d);
      if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * Math.max(1, scaled)) return d;
    }
    return 6;
  }

  var TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

  function timeTicks(min, max, count) {
    var span = Math.max(max - min, 1);
    var step = TIME_STEPS[TIME_STEPS.length - 1];
    for (var i = 0; i < TIME_STEPS.length; i++) {
      if (span / TIME_STEPS[i] <= count) {
        step = TIME_STEPS[i];
        break;
      }
    }
    var ticks = [];
    for (var t = Math.ceil(min / step) * step; t <= max; t += step) ticks.push(t);
    return { min: min, max: max, ticks: ticks, step: step };
  }

  /* percentile axis: t = -log10(1 - p/100), so 90 -> 1, 99 -> 2, 99.9 -> 3 */
  function pctT(p) {
    var q = Math.min(Math.max(p, 0), 99.9999) / 100;
    return -Math.log(1 - q) / Math.LN10;
  }

  function pctLabel(p) {
    return (Math.round(p * 10000) / 10000).toString() + "%";
  }

  var PCT_TICKS = [0, 50, 90, 99, 99.9, 99.99, 99.999, 99.9999];

  /* ---------- chart ---------- */

  function resolve(container) {
    var c = typeof container === "string" ? document.getElementById(container) : container;
    if (!c) throw new Error("GsaiCharts: container " + container + " not found");
    return c;
  }

  function normalizeSeries(list, hidden) {
    return (list || []).map(function (s, i) {
      return {
        name: String(s.name == null ? "series " + (i + 1) : s.name),
        color: s.color || colors[i % colors.length],
        points: (s.points || []).slice(),
        dash: !!s.dash,
        hidden: !!hidden[String(s.name)],
      };
    });
  }

  function normalizeMarkers(list) {
    return (list || []).filter(function (m) { return m && isNum(m.x); }).map(function (m) {
      return { x: m.x, label: m.label == null ? "" : String(m.label), color: m.color || MARKER_COLOR };
    });
  }

  function normalizeBands(list) {
    return (list || []).filter(function (b) { return b && isNum(b.from) && isNum(b.to); }).map(function (b) {
      var label = b.label == null ? "" : String(b.label);
      return { from: Math.min(b.from, b.to), to: Math.max(b.from, b.to), label: label, color: b.color || BAND_COLOR };
    });
  }

  function setOption(o, key, value) {
    if (key === "markers") o.markers = normalizeMarkers(value);
    else if (key === "bands") o.bands = normalizeBands(value);
    else if (key === "height") o.height = value || 260;
    else if (key === "maxPoints") o.maxPoints = value || 0;
    else if (key === "xMin" || key === "xMax" || key === "yMax") o[key] = isNum(value) ? value : null;
    else if (key === "yMin") o.yMin = value === undefined ? 0 : value;
    else if (key === "xType") o.xType = value || "time";
    else if (key !== "series") o[key] = value || "";
  }

  function line(container, options) {
    injectStyle();
    var root = resolve(container);
    var opts = options || {};
    var chart = {
      root: root,
      opts: {
        title: opts.title || "",
        yUnit: opts.yUnit || "",
        xType: opts.xType || "time",
        xUnit: opts.xUnit || "",
        height: opts.height || 260,
        yMin: opts.yMin === undefined ? 0 : opts.yMin,
        yMax: opts.yMax === undefined ? null : opts.yMax,
        maxPoints: opts.maxPoints || 0,
        xMin: isNum(opts.xMin) ? opts.xMin : null,
        xMax: isNum(opts.xMax) ? opts.xMax : null,
        markers: normalizeMarkers(opts.markers),
        bands: normalizeBands(opts.bands),
      },
      hidden: {},
      series: [],
    };
    chart.series = normalizeSeries(opts.series, chart.hidden);
    var box = document.createElement("div");
    box.className = "gsai-chart";
    root.appendChild(box);
    chart.box = box;
    charts.push(chart);
    draw(chart);
    return chart;
  }

  function update(chart, series) {
    chart.series = normalizeSeries(series, chart.hidden);
    draw(chart);
  }

  function setOptions(chart, options) {
    Object.keys(options || {}).forEach(function (k) { setOption(chart.opts, k, options[k]); });
    draw(chart);
  }

  function append(chart, x, values) {
    Object.keys(values || {}).forEach(function (name) {
      var s = null;
      for (var i = 0; i < chart.series.length; i++) if (chart.series[i].name === name) s = chart.series[i];
      if (!s) {
        s = { name: name, color: colors[chart.series.length % colors.length], points: [], dash: false, hidden: !!chart.hidden[name] };
        chart.series.push(s);
      }
      s.points.push([x, values[name]]);
      if (chart.opts.maxPoints > 0 && s.points.length > chart.opts.maxPoints) {
        s.points.splice(0, s.points.length - chart.opts.maxPoints);
      }
    });
    draw(chart);
  }

  function destroy(chart) {
    var i = charts.indexOf(chart);
    if (i >= 0) charts.splice(i, 1);
    if (chart.box && chart.box.parentNode) chart.box.parentNode.removeChild(chart.box);
  }

  function xOf(chart, x) {
    return chart.opts.xType === "percentile" ? pctT(x) : x;
  }

  function draw(chart) {
    var o = chart.opts;
    var box = chart.box;
    box.innerHTML = "";
    if (o.title) {
      var t = document.createElement("div");
      t.className = "gsai-chart-title";
      t.textContent = o.title;
      box.appendChild(t);
    }
    var legend = document.createElement("div");
    legend.className = "gsai-chart-legend";
    chart.series.forEach(function (s) {
      var item = document.createElement("span");
      item.className = s.hidden ? "off" : "";
      item.title = "click to hide or show";
      var sw = document.createElement("i");
      sw.style.background = s.color;
      item.appendChild(sw);
      item.appendChild(document.createTextNode(s.name));
      item.onclick = function () {
        s.hidden = !s.hidden;
        chart.hidden[s.name] = s.hidden;
        draw(chart);
      };
      legend.appendChild(item);
    });
    box.appendChild(legend);

    var width = Math.max(box.clientWidth || chart.root.clientWidth || 600, 240);
    var height = o.height;
    var pw = width - MARGIN.left - MARGIN.right;
    var svg = el("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img" });
    box.appendChild(svg);
    chart.svg = svg;

    // Data extents over visible series.
    var xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity;
    chart.series.forEach(function (s) {
      if (s.hidden) return;
      s.points.forEach(function (p) {
        if (!isNum(p[0])) return;
        var xv = xOf(chart, p[0]);
        if (xv < xmin) xmin = xv;
        if (xv > xmax) xmax = xv;
        if (isNum(p[1])) {
          if (p[1] < ymin) ymin = p[1];
          if (p[1] > ymax) ymax = p[1];
        }
      });
    });
    if (!isFinite(xmin) || !isFinite(ymin)) {
      var ph0 = height - MARGIN.top - MARGIN.bottom;
      var g0 = el("g", { transform: "translate(" + MARGIN.left + "," + MARGIN.top + ")" }, svg);
      el("rect", { x: 0, y: 0, width: pw, height: ph0, fill: "#fafafa", stroke: "#e4e4e4" }, g0);
      var msg = el("text", { x: pw / 2, y: ph0 / 2, "text-anchor": "middle", class: "empty" }, g0);
      var anyHidden = chart.series.some(function (s) { return s.hidden && s.points.length; });
      msg.textContent = anyHidden ? "all series hidden: click the legend to show them" : "no data yet";
      chart.scale = null;
      return;
    }

    var xs;
    if (o.xType === "time" || o.xType === "number") {
      if (o.xMin !== null) xmin = Math.min(xmin, o.xMin);
      if (o.xMax !== null) xmax = Math.max(xmax, o.xMax);
    }
    if (o.xType === "time") {
      if (xmax === xmin) { xmin -= 1; xmax += 1; }
      xs = timeTicks(xmin, xmax, Math.max(2, Math.round(pw / 90)));
    } else if (o.xType === "percentile") {
      xmin = 0;
      if (xmax < pctT(90)) xmax = pctT(90);
      var ticks = PCT_TICKS.filter(function (p) { return pctT(p) <= xmax + 1e-9; });
      xs = { min: 0, max: xmax, ticks: ticks.map(pctT), labels: ticks.map(pctLabel) };
    } else {
      if (xmax === xmin) { xmin -= 1; xmax += 1; }
      xs = linearTicks(xmin, xmax, Math.max(2, Math.round(pw / 90)));
      xs.min = xmin;
      xs.max = xmax;
      xs.ticks = xs.ticks.filter(function (v) { return v >= xmin && v <= xmax; });
    }
    function sx(v) { return ((v - xs.min) / (xs.max - xs.min || 1)) * pw; }

    // Markers and bands within the axis, and their label rows above the plot.
    var phases = layoutPhases(chart, svg, xs, sx, pw);
    var top = MARGIN.top + phases.rows * LABEL_ROW;
    var ph = height - top - MARGIN.bottom;
    var g = el("g", { transform: "translate(" + MARGIN.left + "," + top + ")" }, svg);

    if (o.yMin !== null && isNum(o.yMin)) ymin = Math.min(ymin, o.yMin);
    if (o.yMax !== null && isNum(o.yMax)) ymax = o.yMax;
    if (ymax <= ymin) ymax = ymin + (Math.abs(ymin) > 0 ? Math.abs(ymin) * 0.1 : 1);
    var ys = linearTicks(ymin, ymax, Math.max(2, Math.round(ph / 45)));
    if (o.yMin !== null && isNum(o.yMin) && o.yMin >= ys.min) ys.min = o.yMin;
    function sy(v) { return ph - ((v - ys.min) / (ys.max - ys.min || 1)) * ph; }
    chart.scale = { sx: sx, sy: sy, xs: xs, ys: ys, pw: pw, ph: ph };

    drawBands(g, phases, ph);

    // Grid and axes.
    var grid = el("g", { class: "grid" }, g);
    var axis = el("g", { class: "axis" }, g);
    ys.ticks.forEach(function (v) {
      if (v < ys.min - 1e-9 || v > ys.max + 1e-9) return;
      var y = sy(v);
      el("line", { x1: 0, x2: pw, y1: y, y2: y }, grid);
      var tx = el("text", { x: -6, y: y + 4, "text-anchor": "end" }, axis);
      tx.textContent = fixed(v, stepDigits(ys.step));
    });
    xs.ticks.forEach(function (v, i) {
      var x = sx(v);
      el("line", { x1: x, x2: x, y1: 0, y2: ph }, grid);
      var tx = el("text", { x: x, y: ph + 15, "text-anchor": "middle" }, axis);
      tx.textContent = o.xType === "time" ? clock(v, xs.step < 60) : o.xType === "percentile" ? xs.labels[i] : fixed(v, stepDigits(xs.step));
    });
    el("line", { x1: 0, x2: pw, y1: ph, y2: ph, stroke: "#888" }, g);
    el("line", { x1: 0, x2: 0, y1: 0, y2: ph, stroke: "#888" }, g);
    drawMarkers(g, phases, ph);
    var yl = el("text", { class: "axis-label", transform: "translate(" + (-MARGIN.left + 13) + "," + ph / 2 + ") rotate(-90)", "text-anchor": "middle" }, g);
    yl.textContent = o.yUnit || "value";
    var xl = el("text", { class: "axis-label", x: pw / 2, y: ph + 33, "text-anchor": "middle" }, g);
    xl.textContent = o.xType === "time" ? "time" : o.xType === "percentile" ? "percentile" : o.xUnit;

    // Lines.
    chart.series.forEach(function (s) {
      if (s.hidden) return;
      var d = "";
      var pen = false;
      var single = [];
      s.points.forEach(function (p, i) {
        if (!isNum(p[0]) || !isNum(p[1])) { pen = false; return; }
        var x = sx(xOf(chart, p[0])).toFixed(1), y = sy(p[1]).toFixed(1);
        d += (pen ? "L" : "M") + x + "," + y;
        // A point with no neighbour to join gets a dot, or it would not show at all.
        var next = s.points[i + 1];
        if (!pen && !(next && isNum(next[0]) && isNum(next[1]))) single.push([x, y]);
        pen = true;
      });
      if (d) {
        el("path", { d: d, fill: "none", stroke: s.color, "stroke-width": 2, "stroke-linejoin": "round", "stroke-dasharray": s.dash ? "6 4" : "none" }, g);
      }
      single.forEach(function (p) { el("circle", { cx: p[0], cy: p[1], r: 2.5, fill: s.color }, g); });
    });

    // Hover.
    var guide = el("line", { x1: 0, x2: 0, y1: 0, y2: ph, stroke: "#999", "stroke-dasharray": "3 3", visibility: "hidden" }, g);
    var dots = el("g", {}, g);
    var tip = document.createElement("div");
    tip.className = "gsai-chart-tip";
    box.appendChild(tip);
    var overlay = el("rect", { x: 0, y: 0, width: pw, height: ph, fill: "transparent" }, g);
    function hide() {
      guide.setAttribute("visibility", "hidden");
      dots.innerHTML = "";
      tip.style.display = "none";
    }
    function show(evt) {
      var rect = svg.getBoundingClientRect();
      var px = evt.clientX - rect.left - MARGIN.left;
      var target = xs.min + (px / pw) * (xs.max - xs.min);
      var best = null;
      chart.series.forEach(function (s) {
        if (s.hidden) return;
        s.points.forEach(function (p) {
          if (!isNum(p[0])) return;
          var dx = Math.abs(xOf(chart, p[0]) - target);
          if (best === null || dx < best.dx) best = { dx: dx, x: p[0] };
        });
      });
      if (!best) return hide();
      var gx = sx(xOf(chart, best.x));
      guide.setAttribute("x1", gx);
      guide.setAttribute("x2", gx);
      guide.setAttribute("visibility", "visible");
      dots.innerHTML = "";
      var head = o.xType === "time" ? clock(best.x, true) : o.xType === "percentile" ? pctLabel(best.x) : format(best.x, o.xUnit);
      var html = "<b>" + escapeHtml(head) + "</b>";
      chart.series.forEach(function (s) {
        if (s.hidden) return;
        var hit = null;
        for (var i = 0; i < s.points.length; i++) if (s.points[i][0] === best.x) hit = s.points[i];
        if (!hit || !isNum(hit[1])) return;
        el("circle", { cx: gx, cy: sy(hit[1]), r: 3.5, fill: s.color, stroke: "#fff", "stroke-width": 1 }, dots);
        html += "<div><i style=\"background:" + s.color + "\"></i>" + escapeHtml(s.name) + ": " + escapeHtml(format(hit[1], o.yUnit)) + "</div>";
      });
      phasesAt(chart, best.x).forEach(function (label) {
        html += "<div class=\"phase\">" + escapeHtml(label) + "</div>";
      });
      tip.innerHTML = html;
      tip.style.display = "block";
      var left = MARGIN.left + gx + 12;
      if (left + tip.offsetWidth > width) left = MARGIN.left + gx - tip.offsetWidth - 12;
      tip.style.left = Math.max(0, left) + "px";
      // SVG elements have no offsetTop: place the box from the two bounding rectangles.
      tip.style.top = rect.top - box.getBoundingClientRect().top + top + 4 + "px";
    }
    overlay.addEventListener("mousemove", show);
    overlay.addEventListener("mouseleave", hide);
  }

  /* ---------- markers and bands ---------- */

  /* The markers and bands inside the x axis (bands clipped to it), with label positions: each
     label right of its line or band start (near the right edge: left of the line, or moved left),
     in the first row, counting up from the plot, where it overlaps no other label and no line
     from a higher row; a label that fits no row is left out (the hover box still names it). */
  function layoutPhases(chart, svg, xs, sx, pw) {
    var lo = Math.min(xs.min, xs.max), hi = Math.max(xs.min, xs.max);
    var items = [];
    // Markers first: their lines must reach their labels, a band's label can go anywhere above it.
    chart.opts.markers.forEach(function (m) {
      var x = xOf(chart, m.x);
      if (x >= lo && x <= hi) items.push({ band: false, px: sx(x), label: m.label, color: m.color });
    });
    chart.opts.bands.forEach(function (b) {
      var from = Math.max(xOf(chart, b.from), lo), to = Math.min(xOf(chart, b.to), hi);
      if (to > from) items.push({ band: true, px: sx(from), px2: sx(to), label: b.label, color: b.color });
    });
    var rows = [];
    var probe = el("text", { class: "phase-label", x: -9999, y: -9999 }, svg);
    items.forEach(function (it) {
      it.row = -1;
      if (!it.label) return;
      probe.textContent = it.label;
      var w = probe.getComputedTextLength() || it.label.length * 6.5;
      var a = it.px + LABEL_GAP;
      it.anchor = "start";
      if (a + w > pw + MARGIN.right) {
        // Near the right edge a marker's label goes left of its line; a band's moves left just enough.
        a = it.band ? pw + MARGIN.right - w : it.px - LABEL_GAP - w;
        it.anchor = it.band ? "start" : "end";
      }
      if (a < -MARGIN.left) return;
      var b = a + w;
      var clear = function (iv) { return b + 8 <= iv[0] || a >= iv[1] + 8; };
      for (var r = 0; r < LABEL_ROWS; r++) {
        rows[r] = rows[r] || [];
        if (!rows[r].every(clear)) continue;
        // A marker's line crosses the rows below its label: no label there may cover it.
        var crossed = it.band ? [] : rows.slice(0, r);
        if (!crossed.every(function (row) { return row.every(function (iv) { return it.px < iv[0] - 2 || it.px > iv[1] + 2; }); })) continue;
        rows[r].push([a, b]);
        crossed.forEach(function (row) { row.push([it.px - 1, it.px + 1]); });
        it.row = r;
        it.tx = it.anchor === "start" ? a : b;
        return;
      }
    });
    svg.removeChild(probe);
    var used = 0;
    items.forEach(function (it) { if (it.row + 1 > used) used = it.row + 1; });
    return { items: items, rows: used };
  }

  function labelY(row) {
    return -(row * LABEL_ROW) - 4;
  }

  /* "#rrggbb" darkened by a third, so that a band's pale colour still makes legible text. */
  function darker(color) {
    var m = /^#([0-9a-f]{6})$/i.exec(color);
    if (!m) return color;
    var n = parseInt(m[1], 16);
    var c = [n >> 16, (n >> 8) & 255, n & 255].map(function (v) {
      v = Math.round(v * 0.62);
      return (v < 16 ? "0" : "") + v.toString(16);
    });
    return "#" + c.join("");
  }

  function drawLabel(g, it) {
    if (it.row < 0) return;
    var fill = it.band ? darker(it.color) : it.color;
    var t = el("text", { class: "phase-label", x: it.tx, y: labelY(it.row), "text-anchor": it.anchor, fill: fill }, g);
    t.textContent = it.label;
  }

  function drawBands(g, phases, ph) {
    phases.items.forEach(function (it) {
      if (!it.band) return;
      el("rect", { class: "phase-band", x: it.px, y: 0, width: Math.max(it.px2 - it.px, 1), height: ph, fill: it.color, "fill-opacity": 0.16 }, g);
      el("line", { x1: it.px, x2: it.px2, y1: 0.5, y2: 0.5, stroke: it.color, "stroke-width": 3 }, g);
      drawLabel(g, it);
    });
  }

  function drawMarkers(g, phases, ph) {
    phases.items.forEach(function (it) {
      if (it.band) return;
      var y1 = it.row < 0 ? 0 : labelY(it.row) - 9;
      el("line", { class: "phase-marker", x1: it.px, x2: it.px, y1: y1, y2: ph, stroke: it.color, "stroke-width": 1.2, "stroke-dasharray": "5 3" }, g);
      drawLabel(g, it);
    });
  }

  /* Labels of the bands over x and of the latest marker at or before it, for the hover box. */
  function phasesAt(chart, x) {
    var out = [];
    chart.opts.bands.forEach(function (b) { if (b.label && x >= b.from && x <= b.to) out.push(b.label); });
    var latest = null;
    chart.opts.markers.forEach(function (m) { if (m.label && m.x <= x && (!latest || m.x >= latest.x)) latest = m; });
    if (latest) out.push(latest.label);
    return out;
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  var resizeTimer = null;
  if (typeof window !== "undefined") {
    window.addEventListener("resize", function () {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(function () { charts.forEach(draw); }, 120);
    });
  }

  global.GsaiCharts = {
    line: line,
    update: update,
    append: append,
    setOptions: setOptions,
    resize: draw,
    destroy: destroy,
    format: format,
    colors: colors.slice(),
  };
})(typeof window !== "undefined" ? window : this);
