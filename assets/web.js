// gsai-load web UI: polls /stats/requests (the current table) and /stats/history?since=T (only
// new timeline points) once a second and renders them; the forms post to /swarm. No build step,
// no dependencies but the shared chart code (assets/charts.js, also used by the HTML report).
// Every value from the server is inserted as text, never as HTML.
(function () {
  'use strict';

  var POLL_MS = 1000;
  var $ = function (id) { return document.getElementById(id); };

  var config = null;
  var last = null;          // last /stats/requests answer
  var runId = null;         // test whose timeline the charts hold
  var lastUnix = 0;         // newest timeline point the charts hold
  var shownStart = false;   // the start form opened by itself once
  var charts = null;
  var phases = null;        // the test's stage starts and warm-up, as chart options
  var phasesKey = '';       // phases as JSON, to redraw only when they change
  var chartsKey = '';       // the phases the charts show

  // Chart definitions: each series reads one field of a timeline point.
  var CHARTS = [
    { id: 'chart-rps', title: 'Requests per second', yUnit: 'req/s',
      series: [['RPS', 'rps', '#1f77b4'], ['Failures/s', 'fps', '#d62728']] },
    { id: 'chart-users', title: 'Users', yUnit: 'users', series: [['Users', 'users', '#2ca02c']] },
    { id: 'chart-e2e', title: 'Response time (E2E)', yUnit: 'ms',
      series: [['p50', 'e2e_p50_ms', '#1f77b4'], ['p95', 'e2e_p95_ms', '#ff7f0e']], gaps: true },
    { id: 'chart-ttft', title: 'Time to first token (TTFT)', yUnit: 'ms',
      series: [['p50', 'ttft_p50_ms', '#9467bd'], ['p95', 'ttft_p95_ms', '#e377c2']], gaps: true },
    { id: 'chart-tokens', title: 'Output tokens per second', yUnit: 'tok/s',
      series: [['Tokens/s', 'output_tokens_per_s', '#17becf']] }
  ];
  var points = {};  // chart id -> array of point arrays, one per series

  function resetSeries() {
    CHARTS.forEach(function (c) { points[c.id] = c.series.map(function () { return []; }); });
  }
  resetSeries();

  // ---- HTTP ----------------------------------------------------------------------------------
  function request(path, options) {
    var opts = Object.assign({ cache: 'no-store', credentials: 'same-origin' }, options || {});
    return fetch(path, opts).then(function (r) {
      return r.text().then(function (text) {
        var body = null;
        try { body = JSON.parse(text); } catch (e) { body = { message: text }; }
        return { ok: r.ok, status: r.status, body: body };
      });
    });
  }
  function getJSON(path) {
    return request(path).then(function (r) {
      if (!r.ok) { throw new Error('HTTP ' + r.status); }
      return r.body;
    });
  }
  function postForm(path, form) {
    return request(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(new FormData(form)).toString()
    });
  }

  // ---- formatting ----------------------------------------------------------------------------
  function num(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) { return '–'; }
    var d = digits === undefined ? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2) : digits;
    return v.toLocaleString(undefined, { minimumFractionDigits: d, maximumFractionDigits: d });
  }
  function int(v) { return (v || 0).toLocaleString(); }
  function duration(s) {
    if (!s) { return '–'; }
    s = Math.floor(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var pad = function (n) { return (n < 10 ? '0' : '') + n; };
    return (h ? h + ':' + pad(m) : m) + ':' + pad(sec);
  }
  function clock(unixS) { return new Date(unixS * 1000).toLocaleTimeString(); }
  function cell(tr, text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  // ---- notices -------------------------------------------------------------------------------
  var toastTimer = null;
  function toast(message, isError) {
    var t = $('toast');
    t.textContent = message;
    t.className = 'toast' + (isError ? ' error' : '');
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.hidden = true; }, isError ? 8000 : 4000);
  }
  function banner(message) {
    var b = $('banner');
    b.hidden = !message;
    b.textContent = message || '';
  }

  // ---- tabs ----------------------------------------------------------------------------------
  function showTab(name) {
    document.querySelectorAll('.tabs button').forEach(function (b) {
      b.classList.toggle('active', b.dataset.tab === name);
    });
    document.querySelectorAll('section.tab').forEach(function (s) {
      s.hidden = s.id !== 'tab-' + name;
    });
    if (name === 'charts') { drawCharts(); }
    if (location.hash !== '#' + name) { history.replaceState(null, '', '#' + name); }
  }
  document.querySelectorAll('.tabs button').forEach(function (b) {
    b.addEventListener('click', function () { showTab(b.dataset.tab); });
  });

  // ---- rendering -----------------------------------------------------------------------------
  function renderHeader(s) {
    var st = $('status');
    st.textContent = s.state;
    st.dataset.state = s.state;
    var busy = s.state === 'spawning' || s.state === 'running';
    $('fig-users').textContent = s.state === 'spawning'
      ? int(s.user_count) + ' / ' + int(s.target_user_count) : int(s.user_count);
    $('fig-rps').textContent = num(s.total_rps, 1);
    $('fig-fails').textContent = num(s.fail_ratio * 100, 1) + '%';
    $('fig-tokens').textContent = num(s.total_output_tokens_per_s, 0);
    $('fig-elapsed').textContent = duration(s.elapsed_s);
    var g = s.generator;
    $('fig-gen-box').hidden = !g;
    if (g) {
      var gen = $('fig-gen');
      gen.textContent = g.verdict;
      gen.classList.toggle('bad', g.verdict !== 'ok');
      $('fig-gen-box').title = 'The load generator itself: CPU ' + num(g.cpu_percent, 0) +
        '% of its cores, runtime lag p99 ' + num(g.loop_lag_p99_ms, 1) + ' ms (whole test: CPU p95 ' +
        num(g.cpu_p95_so_far, 0) + '%, lag p99 ' + num(g.loop_lag_p99_so_far_ms, 1) + ' ms)' +
        (g.verdict === 'ok' ? '' : ' — latencies may include its own delay: use fewer users per process or add workers');
    }
    $('target').textContent = s.host ? s.host + ' · ' + s.model + ' · ' + s.api : 'no test yet';
    $('btn-new').hidden = busy || s.state === 'stopping';
    $('btn-edit').hidden = !busy;
    $('btn-stop').hidden = !(busy || s.state === 'stopping');
    $('btn-stop').disabled = s.state === 'stopping';
    $('btn-stop').textContent = s.state === 'stopping' ? 'Stopping…' : 'Stop';
    $('btn-reset').hidden = !busy;
    var ended = $('ended');
    ended.hidden = s.state !== 'stopped';
    if (s.state === 'stopped') {
      ended.textContent = '';
      var b = document.createElement('b');
      b.textContent = s.stop_reason === 'stopped' || !s.stop_reason_text
        ? 'Test ' + s.run_id + ' was stopped'
        : 'Test ' + s.run_id + ' ended: ' + s.stop_reason_text;
      ended.appendChild(b);
      ended.appendChild(document.createTextNode(' after ' + duration(s.elapsed_s) +
        '. Start a new test, or download the results under "Download data".'));
    }
  }

  // Cells after which a column group starts (matches the `g` classes of the header).
  var GROUP_STARTS = [2, 4, 10, 12, 14, 15];
  function renderStats(s) {
    var body = document.querySelector('#stats-table tbody');
    body.textContent = '';
    $('rate-group').textContent = s.state === 'stopped' ? 'Average per second' : 'Current per second';
    s.stats.forEach(function (r) {
      var tr = document.createElement('tr');
      if (r.name === 'Aggregated') { tr.className = 'total'; }
      [
        [r.method, 'text'],
        [r.name, 'text'],
        [int(r.num_requests)],
        [int(r.num_failures), r.num_failures > 0 ? 'fail' : ''],
        [num(r.median_response_time, 0)],
        [num(r['response_time_percentile_0.95'], 0)],
        [num(r.ninety_ninth_response_time, 0)],
        [num(r.avg_response_time, 0)],
        [num(r.min_response_time, 0)],
        [num(r.max_response_time, 0)],
        [num(r.current_rps, 1)],
        [num(r.current_fail_per_sec, 1)],
        [num(r.ttft_p50_ms, 0)],
        [num(r.ttft_p95_ms, 0)],
        [num(r.tpot_p50_ms, 1)],
        [num(r.output_tokens_per_s, 0)]
      ].forEach(function (c, i) {
        var cls = (c[1] || '') + (GROUP_STARTS.indexOf(i) >= 0 ? ' g' : '');
        cell(tr, c[0], cls.trim());
      });
      body.appendChild(tr);
    });
  }

  function renderFailures(s) {
    var body = document.querySelector('#failures-table tbody');
    body.textContent = '';
    var total = 0;
    s.errors.forEach(function (e) {
      total += e.occurrences;
      var tr = document.createElement('tr');
      cell(tr, int(e.occurrences), 'fail');
      cell(tr, e.method, 'text');
      cell(tr, e.name, 'text');
      cell(tr, e.kind, 'text kind');
      cell(tr, e.error, 'message');
      cell(tr, clock(e.first_seen_unix_s));
      cell(tr, clock(e.last_seen_unix_s));
      body.appendChild(tr);
    });
    // The per-kind summary: how many of each kind, and what the kind means.
    var kinds = document.querySelector('#failure-kinds-table tbody');
    kinds.textContent = '';
    (s.error_kinds || []).forEach(function (k) {
      var tr = document.createElement('tr');
      cell(tr, int(k.count), 'fail');
      cell(tr, k.kind, 'text kind');
      cell(tr, k.meaning, 'message');
      kinds.appendChild(tr);
    });
    $('failure-kinds-table').hidden = !(s.error_kinds || []).length;
    $('failures-table').hidden = s.errors.length === 0;
    $('failures-empty').hidden = s.errors.length > 0;
    var badge = $('fail-count');
    badge.hidden = total === 0;
    badge.textContent = int(total);
  }

  // Workers come from the `workers` field (Locust's names); /config's `mode` says whether this
  // is a master (workers expected) or a single process.
  function isMaster() { return !!config && config.mode === 'master'; }
  function bytes(n) {
    if (!n) { return '–'; }
    return n >= 1073741824 ? num(n / 1073741824, 2) + ' GiB' : num(n / 1048576, 0) + ' MiB';
  }
  function workerCommand() {
    var port = config && config.master_port ? config.master_port : 5557;
    return 'gsai-load --worker --master-host ' + (location.hostname || 'MASTER') + ' --master-port ' + port;
  }
  function renderWorkers(s) {
    var workers = s.workers || [];
    var master = isMaster();
    $('fig-workers-box').hidden = !master;
    $('fig-workers').textContent = int(s.worker_count);
    var badge = $('worker-count');
    badge.hidden = !master;
    badge.textContent = int(s.worker_count);
    $('workers-empty').hidden = workers.length > 0;
    $('workers-wrap').hidden = workers.length === 0;
    if (master && !workers.length) {
      $('workers-empty-title').textContent = 'No worker connected yet';
      $('workers-empty-text').textContent = 'This gsai-load is a master: tests run on its workers. ' +
        'Start one or more workers; each appears here as it connects, and tests can start once one is here.';
      $('workers-command').textContent = workerCommand();
      $('workers-command').hidden = false;
    }
    if (!workers.length) { return; }
    var missing = workers.filter(function (w) { return w.missing; }).length;
    var summary = $('workers-summary');
    summary.textContent = '';
    var b = document.createElement('b');
    b.textContent = int(s.worker_count) + (s.worker_count === 1 ? ' worker' : ' workers');
    summary.appendChild(b);
    summary.appendChild(document.createTextNode(' connected' +
      (missing ? ', ' + int(missing) + ' missing' : '') + ' · ' + int(s.user_count) + ' users running'));
    var body = document.querySelector('#workers-table tbody');
    body.textContent = '';
    workers.forEach(function (w) {
      var tr = document.createElement('tr');
      if (w.missing) { tr.className = 'missing'; }
      cell(tr, String(w.index));
      cell(tr, w.id, 'text worker-id');
      var st = cell(tr, '', 'text');
      var pill = document.createElement('span');
      pill.className = 'state';
      pill.dataset.state = w.state;
      pill.textContent = w.state;
      st.appendChild(pill);
      cell(tr, int(w.user_count));
      cell(tr, num(w.cpu_usage, 1) + ' %');
      cell(tr, bytes(w.memory_usage));
      cell(tr, w.missing ? '–' : num(w.heartbeat_age_s, 1) + ' s ago');
      cell(tr, int(w.requests));
      body.appendChild(tr);
    });
  }

  function renderDownloads() {
    var list = $('downloads');
    list.textContent = '';
    (config.downloads || []).forEach(function (d) {
      var li = document.createElement('li');
      var href = d.href.replace(/^\//, '');
      if (d.available) {
        var a = document.createElement('a');
        a.href = href;
        a.textContent = d.label;
        a.setAttribute('download', '');
        li.appendChild(a);
      } else {
        var span = document.createElement('span');
        span.className = 'unavailable';
        span.textContent = d.label + ' (not in this build yet)';
        li.appendChild(span);
      }
      var code = document.createElement('code');
      code.textContent = 'GET ' + d.href;
      li.appendChild(code);
      list.appendChild(li);
    });
  }

  // ---- charts (shared code: assets/charts.js) --------------------------------------------------
  function seriesOf(c) {
    return c.series.map(function (s, i) { return { name: s[0], color: s[2], points: points[c.id][i] }; });
  }
  function chartsVisible() { return !$('tab-charts').hidden; }
  // Stage starts (dashed lines) and the warm-up (a shaded band); the axis begins at the start.
  function phaseOptions() {
    var p = phases || { markers: [], bands: [] };
    var any = p.markers.length > 0 || p.bands.length > 0;
    return { markers: p.markers, bands: p.bands, xMin: any ? p.started_unix_s : null };
  }
  function drawCharts() {
    if (!window.GsaiCharts || !chartsVisible()) { return; }
    if (!charts) {
      charts = {};
      CHARTS.forEach(function (c) {
        var opts = Object.assign({ title: c.title, yUnit: c.yUnit, series: seriesOf(c) }, phaseOptions());
        charts[c.id] = window.GsaiCharts.line($(c.id), opts);
      });
      chartsKey = phasesKey;
      return;
    }
    if (chartsKey !== phasesKey) {
      CHARTS.forEach(function (c) { window.GsaiCharts.setOptions(charts[c.id], phaseOptions()); });
      chartsKey = phasesKey;
    }
    CHARTS.forEach(function (c) { window.GsaiCharts.update(charts[c.id], seriesOf(c)); });
  }
  function setPhases(p) {
    var key = JSON.stringify(p || null);
    if (key === phasesKey) { return; }
    phasesKey = key;
    phases = p || null;
    drawCharts();
  }
  function addPoints(list) {
    list.forEach(function (p) {
      // The server replaces a point pushed under half a second after the last (the stop phase
      // collects at once): do the same, or the rates would end in a spike.
      var replace = lastUnix > 0 && p.unix_s - lastUnix < 0.5;
      CHARTS.forEach(function (c) {
        c.series.forEach(function (s, i) {
          var v = p[s[1]];
          var list = points[c.id][i];
          if (replace) { list.pop(); }
          // A percentile of 0 ms means no request finished in the window: leave a gap.
          list.push([p.unix_s, c.gaps && !v ? null : v]);
        });
      });
      lastUnix = Math.max(lastUnix, p.unix_s);
    });
  }
  function pollHistory() {
    return getJSON('stats/history?since=' + lastUnix).then(function (h) {
      if (h.run_id !== runId) {
        // A new test: the charts start over with its whole timeline.
        var partial = lastUnix !== 0;
        resetSeries();
        lastUnix = 0;
        runId = h.run_id;
        if (partial) { return pollHistory(); }
      }
      addPoints(h.points);
      if (h.points.length) { drawCharts(); }
    });
  }

  // ---- server metrics (--server-metrics; shared code: assets/server_metrics.js) ----------------
  var serverPolled = 0;
  function pollServerMetrics() {
    // Only while the charts are in view, and every other second: the answer holds every point.
    if (!window.GsaiServerMetrics || !chartsVisible() || Date.now() - serverPolled < 2000) { return null; }
    serverPolled = Date.now();
    return getJSON('stats/server-metrics').then(function (d) {
      var box = $('server-metrics');
      box.hidden = !d.enabled;
      if (!d.enabled) { return; }
      var ttft = CHARTS.filter(function (c) { return c.id === 'chart-ttft'; })[0];
      var client = ttft ? seriesOf(ttft).map(function (s) { return Object.assign({}, s, { name: 'client ' + s.name }); }) : [];
      window.GsaiServerMetrics.render($('server-metrics-body'), d, {
        clientTtft: client,
        chart: function (panel, options) { return window.GsaiCharts.line(panel, Object.assign(options, phaseOptions())); },
      });
    });
  }

  // ---- polling -------------------------------------------------------------------------------
  function poll() {
    getJSON('stats/requests')
      .then(function (s) {
        last = s;
        banner(null);
        renderHeader(s);
        renderStats(s);
        renderFailures(s);
        renderWorkers(s);
        setPhases(s.phases);
        if (s.state === 'ready' && !shownStart) { shownStart = true; openStart(); }
        return pollHistory().then(pollServerMetrics);
      })
      .catch(function (e) {
        banner('Lost contact with gsai-load (' + e.message + '); retrying every second…');
      })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  // ---- forms ---------------------------------------------------------------------------------
  function openStart() {
    var f = $('start-form');
    var d = config ? config.defaults : {};
    if (!f.dataset.filled) {
      f.user_count.value = d.user_count || 1;
      f.spawn_rate.value = d.spawn_rate || 1;
      f.host.value = d.host || '';
      f.model.value = d.model || '';
      f.api.value = d.api || 'openwebui';
      f.run_time.value = d.run_time || '';
      f.dataset.filled = '1';
    }
    $('start-error').hidden = true;
    var hint = $('start-workers');
    hint.hidden = !isMaster();
    if (isMaster()) {
      var n = last ? last.worker_count : 0;
      hint.className = n ? 'hint' : 'hint warn';
      hint.textContent = n
        ? 'The users are spread over the ' + int(n) + (n === 1 ? ' connected worker.' : ' connected workers.')
        : 'No worker is connected yet: start workers first (see the Workers tab).';
      // The master never sends a token: a token typed here would reach no worker.
      $('token-field').hidden = true;
      $('token-hint').textContent = 'Each worker uses its own token (GSA_AUTH_TOKEN or --token where it runs), ' +
        'only for its own GSAI_HOST; the master never sends one, and no token is ever sent to this page.';
    }
    $('start-dialog').showModal();
  }
  function openEdit() {
    var f = $('edit-form');
    f.user_count.value = last ? last.target_user_count : 1;
    if (!f.spawn_rate.value) { f.spawn_rate.value = $('start-form').spawn_rate.value || 1; }
    $('edit-error').hidden = true;
    $('edit-dialog').showModal();
  }
  function submitTo(form, dialog, errorBox) {
    return function (ev) {
      ev.preventDefault();
      postForm('swarm', form).then(function (r) {
        if (r.ok && r.body.success) {
          $(dialog).close();
          toast(r.body.message);
          showTab('stats');
          poll.now();
        } else {
          $(errorBox).textContent = r.body.message || ('HTTP ' + r.status);
          $(errorBox).hidden = false;
        }
      }).catch(function (e) {
        $(errorBox).textContent = 'Could not reach gsai-load: ' + e.message;
        $(errorBox).hidden = false;
      });
    };
  }
  $('start-form').addEventListener('submit', submitTo($('start-form'), 'start-dialog', 'start-error'));
  $('edit-form').addEventListener('submit', submitTo($('edit-form'), 'edit-dialog', 'edit-error'));
  $('start-cancel').addEventListener('click', function () { $('start-dialog').close(); });
  $('edit-cancel').addEventListener('click', function () { $('edit-dialog').close(); });
  $('btn-new').addEventListener('click', openStart);
  $('btn-edit').addEventListener('click', openEdit);

  function action(path, confirmText) {
    return function () {
      if (confirmText && !window.confirm(confirmText)) { return; }
      request(path).then(function (r) {
        toast(r.body.message || ('HTTP ' + r.status), !r.ok);
        poll.now();
      });
    };
  }
  $('btn-stop').addEventListener('click', action('stop'));
  $('btn-reset').addEventListener('click', action('stats/reset'));

  // A render right after an action, outside the once-a-second rhythm.
  poll.now = function () {
    getJSON('stats/requests').then(function (s) {
      last = s; renderHeader(s); renderStats(s); renderFailures(s); renderWorkers(s);
    }).catch(function () {});
  };

  // ---- start ---------------------------------------------------------------------------------
  getJSON('config').then(function (c) {
    config = c;
    renderDownloads();
  }).catch(function (e) {
    banner('Could not load the configuration (' + e.message + ')');
  }).then(function () {
    var tab = location.hash.replace('#', '');
    showTab(['stats', 'charts', 'failures', 'workers', 'downloads'].indexOf(tab) >= 0 ? tab : 'stats');
    poll();
  });
}());
