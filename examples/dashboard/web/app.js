// rtdash dashboard client.
//
// Plain JavaScript with no dependencies and no build step: it is embedded in
// the example binary and drawn with the 2D canvas API (no chart library).
//
// Flow: fetch the dashboard JSON -> lay the widgets out on a CSS grid from
// their grid positions -> open `WS /stream/{dashboard_id}` (protocol in
// docs/PROTOCOL.md) -> apply snapshot and update frames to per-widget state
// -> mark the touched widgets dirty -> draw each dirty widget once in the
// next animation frame.
//
// History: on open and after every reconnect the page fetches the last 5 min
// of every widget (`GET /dashboards/{id}/history`, one request) and draws it,
// keeping the live values whose `window_end` is after the last history point
// (the seam rule of docs/PROTOCOL.md: no gap, no duplicate). The range picker
// (5 min, 1 h, 24 h) scales the time axes and loads the longer history in the
// background, in front of what the page holds, while live values keep coming.
//
// Hooks for tests and scripts: `#status[data-status]` is `connecting`,
// `live` or `reconnecting`; every widget is `section.widget[data-widget-id]`
// with `data-chart`, `data-value` (its latest value(s) as text) and
// `data-stale` (`true`/`false`); elements showing a value have
// `data-role="value"`. `window.__rtdash` has `points(widgetId)` (points held
// with a value for the widget, its largest series), `span(widgetId)` (the time axis drawn,
// ms), `range()`, `historyLoads()` (history answers applied), `segments(widgetId)`,
// `outages()`, `hidden(widgetId)`, `zoom(widgetId)`, `alertSpans(widgetId)`,
// `yRange(widgetId)` and `thresholds(widgetId)` (the values of the threshold lines
// drawn: display bands and alert rules); for the editor `dashboardId()`,
// `dashboards()` (the picker's list), `editing()`, `rules(widgetId)` (the widget's
// alert rules as held), `catalog()` (the last `GET /catalog`), `historyRecords()`
// and `historyPanelLoads()` (the alert history panel), `writes()` (API changes
// made), `lastError()` (the last refused change: `{status, code, message,
// violations}`) and `gone()` (the id of a dashboard deleted while shown)
// (see examples/dashboard/README.md).
//
// Editor: a dashboard picker (`?dashboard=ID`), a "Dashboards…" dialog (create,
// rename, delete with a confirm step) and an "Edit" toggle. In edit mode every
// widget has buttons to edit it (a dialog: metric from `GET /catalog`, Preview
// with `POST /preview`, Save with `PATCH /dashboards/{id}/widgets`), edit its
// alert rules (`GET`+`PUT /dashboards/{id}/alert-rules` with the full list),
// move it and resize it by one grid cell (widgets it would cover move down) and
// remove it. A change answered 401/403 asks for a writer token (kept in
// sessionStorage, sent as `Authorization: Bearer`) and is tried again. The
// alert history panel reads `GET /dashboards/{id}/alert-history`, again on every
// `alert` frame; every viewer lays the dashboard out anew on a `dashboard` frame.
'use strict';

(() => {
  // ------------------------------------------------------------------ config

  const params = new URLSearchParams(location.search);
  const TOKEN = params.get('token') || 'demo';
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 8000;
  const LIVE_RESET_MS = 5000; // a connection live this long resets the backoff
  const PING_EVERY_MS = 5000;
  const SILENCE_LIMIT_MS = 15000; // no frame at all for this long: reconnect
  const RING_CAPACITY = 2048;
  const RANGES = { '5m': 5 * 60 * 1000, '1h': 60 * 60 * 1000, '24h': 24 * 60 * 60 * 1000 };
  const LIVE_RANGE_MS = RANGES['5m'];
  const LIVE_STEP_MS = 1000; // one point per bucket for the live range
  const MIN_SPAN_MS = 30 * 1000;
  const ALERT_HISTORY = 50;
  const ALT_EVERY_MS = 5000; // chart text alternatives change at most this often
  const ANNOUNCE_EVERY_MS = 10000; // a widget's polite announcement at most this often
  const PALETTE = ['#5b9cf6', '#f5a524', '#a78bfa', '#34d399', '#f472b6', '#22d3ee', '#fb7185', '#facc15'];
  const HEAT_STOPS = ['#0d1b3d', '#1f4e9c', '#1ea6b8', '#9bd35a', '#f7c948', '#f26b3a', '#d7263d'];
  const FONT = 'Inter, "Segoe UI", system-ui, -apple-system, Roboto, "DejaVu Sans", sans-serif';
  // Canvas colours, read from the stylesheet's variables (dark or light theme).
  const C = {
    text: '#e3e8f0',
    muted: '#9aa7ba',
    faint: '#9aa7ba',
    grid: 'rgba(133, 147, 168, 0.12)',
    track: 'rgba(255, 255, 255, 0.07)',
    accent: '#4f9cf9',
    bad: '#ef4f5b',
    alertFill: 'rgba(239, 79, 91, 0.13)',
    alertEdge: 'rgba(239, 79, 91, 0.6)',
    empty: 'rgba(255, 255, 255, 0.03)',
  };
  function readTheme() {
    const cs = getComputedStyle(document.documentElement);
    const get = (name, fallback) => cs.getPropertyValue(name).trim() || fallback;
    C.text = get('--text', C.text);
    C.muted = get('--muted', C.muted);
    C.faint = C.muted;
    C.grid = get('--grid', C.grid);
    C.track = get('--track', C.track);
    C.accent = get('--accent', C.accent);
    C.bad = get('--bad', C.bad);
    C.alertFill = get('--alert-fill', C.alertFill);
    C.alertEdge = get('--alert-edge', C.alertEdge);
    C.empty = get('--empty-cell', C.empty);
  }

  // ------------------------------------------------------------------ helpers

  const $ = (sel, root = document) => root.querySelector(sel);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

  // One number format everywhere, in the browser's locale: three significant
  // digits, compact from 1,000 on (9,704 -> "9.7K", 10,000 -> "10K", never a
  // switch from "9,704" to "10.0k"); the same rule for values, ticks and tooltips.
  const NF = new Intl.NumberFormat(undefined, { notation: 'compact', maximumSignificantDigits: 3 });
  const NF_PLAIN = new Intl.NumberFormat(undefined, { notation: 'compact', maximumSignificantDigits: 6 });
  const NF_INT = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const tickFormats = new Map();
  const withUnit = (s, unit) => (unit ? (unit === '%' ? s + '%' : s + '\u00a0' + unit) : s);

  /** Formats a value with its unit: 1234 -> "1.23K req/s", 7.234 -> "7.23%". */
  function fmt(v, unit) {
    if (v === null || v === undefined || !Number.isFinite(v)) return '—';
    return withUnit(NF.format(Math.abs(v) < 1e-9 ? 0 : v), unit);
  }

  /** A configured number (threshold, limit) as written: 5 -> "5%", 0.25 -> "0.25 s". */
  function fmtPlain(v, unit) {
    if (v === null || !Number.isFinite(v)) return '—';
    return withUnit(NF_PLAIN.format(v), unit);
  }

  /** An axis label: compact, with as many decimals as the tick step needs. */
  function fmtTick(v, step, unit) {
    const big = Math.abs(v) >= 1000 || step >= 1000;
    const decimals = big || step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step) - 1e-9));
    const key = big ? 'big' : decimals;
    let f = tickFormats.get(key);
    if (!f) {
      f = big
        ? new Intl.NumberFormat(undefined, { notation: 'compact', maximumSignificantDigits: 3 })
        : new Intl.NumberFormat(undefined, { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
      tickFormats.set(key, f);
    }
    return withUnit(f.format(Math.abs(v) < step * 1e-6 ? 0 : v), unit);
  }

  // Times in the browser's locale and time zone (12- or 24-hour as it prefers).
  const TF = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' });
  const TF_HM = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
  const DF = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
  const DTF_FULL = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit', second: '2-digit' });

  /** A time with its date, for tooltips and the alert list. */
  function fmtTimeFull(ms) {
    return DTF_FULL.format(new Date(ms));
  }

  function fmtTime(ms) {
    return TF.format(new Date(ms));
  }

  const dayOf = (ms) => new Date(ms).toDateString();

  /** An axis time label: seconds only when the step needs them; the date where
   *  the day changes (the first label too, when the range crosses midnight). */
  function fmtAxisTime(ms, stepMs, withDate) {
    const d = new Date(ms);
    const time = stepMs >= 60000 ? TF_HM.format(d) : TF.format(d);
    return withDate ? `${DF.format(d)} ${time}` : time;
  }

  /** A duration: "45 s", "3 min 20 s", "1 h 5 min". */
  function fmtDuration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
    return m % 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${Math.floor(m / 60)} h`;
  }

  function fmtAgo(ms) {
    if (ms < 1500) return 'just now';
    const s = Math.round(ms / 1000);
    if (s < 90) return s + ' s ago';
    const m = Math.round(s / 60);
    return m < 90 ? m + ' min ago' : Math.round(m / 60) + ' h ago';
  }

  /** A step of 1, 2 or 5 times a power of ten, near `raw`. */
  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }

  function hexToRgb(hex) {
    const m = /^#?([0-9a-f]{6})$/i.exec(hex || '');
    if (!m) return [79, 156, 249];
    const n = parseInt(m[1], 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  const rgba = (hex, a) => {
    const [r, g, b] = hexToRgb(hex);
    return `rgba(${r}, ${g}, ${b}, ${a})`;
  };

  /** The colour of the highest threshold at or below `v`, else `fallback`. */
  function thresholdColor(display, v, fallback) {
    let c = fallback;
    if (v === null) return c;
    for (const t of display.thresholds || []) {
      if (v >= t.value) c = t.color;
    }
    return c;
  }

  /** Interpolates the heatmap ramp at `f` in [0, 1]. */
  const heatRgb = HEAT_STOPS.map(hexToRgb);
  function heatColor(f) {
    const x = clamp(f, 0, 1) * (heatRgb.length - 1);
    const i = Math.min(heatRgb.length - 2, Math.floor(x));
    const t = x - i;
    const a = heatRgb[i];
    const b = heatRgb[i + 1];
    return `rgb(${Math.round(a[0] + (b[0] - a[0]) * t)}, ${Math.round(a[1] + (b[1] - a[1]) * t)}, ${Math.round(a[2] + (b[2] - a[2]) * t)})`;
  }

  // One colour per group (e.g. region) across the whole dashboard.
  const groupColors = new Map();
  function colorOfGroup(group, fallback) {
    if (group === '') return fallback;
    if (!groupColors.has(group)) groupColors.set(group, PALETTE[groupColors.size % PALETTE.length]);
    return groupColors.get(group);
  }

  // ------------------------------------------------------------------ ring buffer

  /** Fixed-capacity ring of (time, value) points; the oldest point is overwritten. */
  class Ring {
    constructor(capacity) {
      this.t = new Float64Array(capacity);
      this.v = new Float64Array(capacity);
      this.cap = capacity;
      this.start = 0;
      this.len = 0;
      // History coverage: the server sends one point per step there (a missing
      // step is a gap); `step` is the finest step, `coarseUntil`/`coarseStep` the
      // older span of a longer range.
      this.histFrom = Infinity;
      this.histTo = -Infinity;
      this.step = 0;
      this.coarseUntil = -Infinity;
      this.coarseStep = 0;
    }

    get lastT() {
      return this.len ? this.t[(this.start + this.len - 1) % this.cap] : -Infinity;
    }

    get firstT() {
      return this.len ? this.t[this.start] : Infinity;
    }

    /** Appends a point; a point at the newest time replaces it, an older one is ignored. */
    push(t, v) {
      const val = v === null ? NaN : v;
      if (this.len) {
        const last = (this.start + this.len - 1) % this.cap;
        if (t === this.t[last]) {
          this.v[last] = val;
          return;
        }
        if (t < this.t[last]) return;
      }
      const i = (this.start + this.len) % this.cap;
      this.t[i] = t;
      this.v[i] = val;
      if (this.len < this.cap) this.len++;
      else this.start = (this.start + 1) % this.cap;
    }

    /** The points, oldest first, as `[t, v]` pairs. */
    toArray() {
      const out = [];
      this.forEach((t, v) => out.push([t, v]));
      return out;
    }

    /** Replaces the contents with `points` (`[t, v]`, oldest first; the newest are kept
     *  if there are too many). */
    refill(points) {
      const keep = points.slice(Math.max(0, points.length - this.cap));
      this.start = 0;
      this.len = 0;
      for (const [t, v] of keep) {
        this.t[this.len] = t;
        this.v[this.len] = v;
        this.len++;
      }
    }

    /** The seam: history `points` (`[t, v|null]`, oldest first), then the points held
     *  whose time is after the last history point (live values received meanwhile). */
    seam(points) {
      if (!points.length) return;
      const firstH = points[0][0];
      const lastH = points[points.length - 1][0];
      const held = this.toArray();
      // Points older than this history stay, and so do values held inside it
      // where the history has none (a restarted server has no data from
      // before its start: its null there must not erase what was seen live).
      const older = held.filter(([t]) => t < firstH);
      const live = held.filter(([t]) => t > lastH);
      const merged = new Map(points.map(([t, v]) => [t, v === null ? NaN : v]));
      for (const [t, v] of held) {
        if (t < firstH || t > lastH || Number.isNaN(v)) continue;
        const h = merged.get(t);
        if (h === undefined || Number.isNaN(h)) merged.set(t, v);
      }
      const mid = [...merged.entries()].sort((x, y) => x[0] - y[0]);
      this.refill(older.concat(mid, live));
    }

    /** Longer history in front: the history points before the oldest point held. */
    extendBack(points) {
      const first = this.firstT;
      const older = points.filter(([t]) => t < first).map(([t, v]) => [t, v === null ? NaN : v]);
      if (older.length) this.refill(older.concat(this.toArray()));
    }

    /** Notes the span and step of history applied (see `breaksBetween`). */
    cover(from, to, step, mode) {
      if (mode === 'extend') {
        this.coarseUntil = Math.max(this.coarseUntil, Math.min(to, this.histFrom));
        this.coarseStep = Math.max(this.coarseStep, step);
      } else {
        this.step = step;
      }
      this.histFrom = Math.min(this.histFrom, from);
      this.histTo = Math.max(this.histTo, to);
    }

    /** True when the line must break between consecutive points at `t1` < `t2`:
     *  a step is missing and the connection was down in between, or they are
     *  more than ~2 steps apart and either both lie in loaded history
     *  (which has a point per step, so a missing one is missing data) or the
     *  connection was down in between (live values are only sent when they
     *  change, so a long interval between two live values is not a gap). */
    breaksBetween(t1, t2, refreshMs) {
      const step = Math.max(refreshMs, t1 < this.coarseUntil ? this.coarseStep : this.step);
      // a step missing across an outage is a gap, however short the outage
      if (t2 - t1 > 1.5 * step && outageBetween(t1, t2)) return true;
      if (t2 - t1 <= 2.5 * step) return false;
      if (t1 >= this.histFrom && t2 <= this.histTo) return true;
      return outageBetween(t1, t2);
    }

    /** Calls `fn(t, v)` for every point from the oldest; `v` is NaN for "no data". */
    forEach(fn) {
      for (let k = 0; k < this.len; k++) {
        const i = (this.start + k) % this.cap;
        fn(this.t[i], this.v[i]);
      }
    }

    /** The last point at or before `t` as `[t, v]`, or null. */
    pointAt(t) {
      for (let k = this.len - 1; k >= 0; k--) {
        const i = (this.start + k) % this.cap;
        if (this.t[i] <= t) return [this.t[i], this.v[i]];
      }
      return null;
    }

    /** The value in force at time `t` (the last point at or before it), or null. */
    valueAt(t) {
      let out = null;
      for (let k = this.len - 1; k >= 0; k--) {
        const i = (this.start + k) % this.cap;
        if (this.t[i] <= t) {
          out = Number.isNaN(this.v[i]) ? null : this.v[i];
          break;
        }
      }
      return out;
    }
  }

  // ------------------------------------------------------------------ state

  const state = {
    dashboard: null,
    dashboardJson: '',
    views: new Map(), // widget id -> view
    status: 'connecting',
    everLive: false,
    ws: null,
    attempt: 0,
    retryAt: 0,
    retryTimer: 0,
    liveSince: 0,
    lostAt: 0,
    lastMsgAt: 0,
    lastUpdateAt: 0,
    lastPingAt: 0,
    clockOffset: 0, // server time - client time, ms
    range: LIVE_RANGE_MS, // the time axis of the charts, ms
    historyLoads: 0,
    seq: null,
    updates: 0,
    reconnects: 0,
    rtt: null,
    closeNote: '',
    latencies: [],
    alertsFiring: new Map(),
    resolvedAt: new Map(), // alert key -> time of the last resolve seen
    alertHistory: [],
    outages: [], // [from, to] in server time: the stream was down (to: Infinity while down)
    wantId: params.get('dashboard'), // the dashboard to show (`?dashboard=ID`), else the first listed
    gen: 0, // bumped when another dashboard is shown: answers for the previous one are dropped
    gone: null, // the id of a dashboard that was deleted while shown
  };

  /** True when the stream was down at some time between `t1` and `t2` (server time). */
  function outageBetween(t1, t2) {
    for (const [a, b] of state.outages) if (a < t2 && b > t1) return true;
    return false;
  }

  const serverNow = () => Date.now() + state.clockOffset;
  const isLive = () => state.status === 'live';

  // ------------------------------------------------------------------ frame loop

  const dirty = new Set();
  let frameRequested = false;
  let chromeDirty = true;

  function markDirty(view) {
    dirty.add(view);
    requestFrame();
  }

  function markChrome() {
    chromeDirty = true;
    requestFrame();
  }

  function requestFrame() {
    if (frameRequested) return;
    frameRequested = true;
    requestAnimationFrame(drawFrame);
  }

  /** Draws every dirty widget once; many updates between two frames cost one draw. */
  function drawFrame() {
    frameRequested = false;
    for (const view of dirty) {
      try {
        view.render();
      } catch (err) {
        console.error('render failed for widget', view.def.widget_id, err);
      }
    }
    dirty.clear();
    if (chromeDirty) {
      chromeDirty = false;
      renderChrome();
    }
  }

  // ------------------------------------------------------------------ widget views

  /** What every widget view shares: DOM, per-group history and latest values. */
  class View {
    constructor(def, root) {
      this.def = def;
      this.display = def.display_config || def.display || {};
      this.unit = this.display.unit || '';
      this.root = root;
      this.body = $('.widget-body', root);
      this.legend = $('.widget-legend', root);
      this.headValue = $('.head-value', root);
      this.foot = $('.widget-foot', root);
      this.staleBadge = $('.badge-stale', root);
      this.alertBadge = $('.badge-alert', root);
      this.series = new Map(); // group -> Ring
      this.latest = new Map(); // group -> {value, t, stale}
      this.lastT = 0;
      this.lastEvent = 0;
      this.missing = false; // absent from the newest snapshot
      this.canvas = null;
      this.foot.textContent = describe(def);
    }

    addCanvas() {
      this.canvas = el('canvas');
      // a text alternative: the latest value(s), refreshed at most every ALT_EVERY_MS
      this.canvas.setAttribute('role', 'img');
      this.canvas.setAttribute('aria-label', `${this.def.title}: no data yet`);
      this.altAt = 0;
      // The same text announced politely (aria-live), for the widget that holds the
      // keyboard focus or is full screen, at most every ANNOUNCE_EVERY_MS: one
      // widget speaks at a time, never twelve at once.
      this.announceEl = el('p', 'visually-hidden announce');
      this.announceEl.setAttribute('aria-live', 'polite');
      this.announceEl.setAttribute('aria-atomic', 'true');
      this.root.appendChild(this.announceEl);
      this.announceAt = 0;
      this.announceTimer = 0;
      this.root.addEventListener('focusin', () => this.announce());
      this.body.appendChild(this.canvas);
      this.ctx = this.canvas.getContext('2d');
      this.w = 0;
      this.h = 0;
      this.dpr = 1;
      // The size comes from the observer, so drawing never forces a layout.
      this.cssW = 0;
      this.cssH = 0;
      new ResizeObserver((entries) => {
        const r = entries[entries.length - 1].contentRect;
        if (r.width === this.cssW && r.height === this.cssH) return;
        this.cssW = r.width;
        this.cssH = r.height;
        markDirty(this);
      }).observe(this.body);
    }

    /** Sizes the canvas backing store to the element; false when not visible. */
    fitCanvas() {
      const r = { width: this.cssW, height: this.cssH };
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(1, Math.round(r.width * dpr));
      const h = Math.max(1, Math.round(r.height * dpr));
      if (w !== this.canvas.width || h !== this.canvas.height) {
        this.canvas.width = w;
        this.canvas.height = h;
      }
      this.w = w;
      this.h = h;
      this.dpr = dpr;
      this.ctx.setTransform(1, 0, 0, 1, 0, 0);
      this.ctx.clearRect(0, 0, w, h);
      return r.width > 2 && r.height > 2;
    }

    apply(p) {
      let ring = this.series.get(p.group);
      if (!ring) {
        ring = new Ring(RING_CAPACITY);
        this.series.set(p.group, ring);
      }
      ring.push(p.t, p.value);
      this.latest.set(p.group, { value: p.value, t: p.t, stale: p.stale });
      this.lastT = Math.max(this.lastT, p.t);
      if (p.event) this.lastEvent = Math.max(this.lastEvent, p.event);
      this.missing = false;
    }

    /** Applies one widget's `history` (see docs/PROTOCOL.md): `seam` replaces what is
     *  held up to the last history point, `extend` adds only older points. */
    applyHistory(h, mode) {
      for (const s of h.series || []) {
        const group = s.group == null ? '' : String(s.group);
        const points = (s.points || []).map((p) => [p[0], num(p[1])]);
        if (!points.length) continue;
        let ring = this.series.get(group);
        if (!ring) {
          ring = new Ring(RING_CAPACITY);
          this.series.set(group, ring);
        }
        if (mode === 'extend') ring.extendBack(points);
        else ring.seam(points);
        const step = num(h.step_ms) || 1000;
        ring.cover(num(h.from) ?? points[0][0] - step, num(h.to) ?? points[points.length - 1][0], step, mode);
        const [t, v] = points[points.length - 1];
        if (!this.latest.has(group)) this.latest.set(group, { value: v, t, stale: false });
        this.lastT = Math.max(this.lastT, t);
      }
    }

    /** Points with a value held for the widget (its largest series). */
    pointCount() {
      let n = 0;
      for (const r of this.series.values()) {
        let k = 0;
        r.forEach((t, v) => { if (!Number.isNaN(v)) k++; });
        n = Math.max(n, k);
      }
      return n;
    }

    groups() {
      return [...this.latest.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    }

    /** The single value of an ungrouped widget (or the first group's). */
    primary() {
      const g = this.latest.has('') ? '' : this.groups()[0];
      return g === undefined ? null : this.latest.get(g);
    }

    isStale() {
      if (!isLive() || this.missing) return true;
      for (const l of this.latest.values()) if (l.stale) return true;
      return false;
    }

    /** Updates the parts every widget has: stale marking, data attributes. */
    renderCommon() {
      const stale = this.isStale();
      this.root.classList.toggle('stale', stale && this.latest.size > 0);
      this.root.dataset.stale = String(stale);
      this.staleBadge.hidden = !(stale && this.latest.size > 0);
      if (!this.staleBadge.hidden) {
        const why = !isLive()
          ? 'not connected to the server'
          : this.missing
            ? 'no value since the last snapshot'
            : 'the server marks the source stale';
        this.staleBadge.title = `Stale: ${why}. ${this.lastT ? `Last value for the window ending ${fmtTime(this.lastT)}.` : 'No value received.'}`;
      }
      const parts = this.groups().map((g) => {
        const l = this.latest.get(g);
        const v = l.value === null ? 'null' : String(l.value);
        return g === '' ? v : `${g}=${v}`;
      });
      this.root.dataset.value = parts.join(';');
      const alerting = [...state.alertsFiring.values()].some((a) => a.widget === this.def.widget_id);
      this.root.classList.toggle('alerting', alerting);
      this.alertBadge.hidden = !alerting;
      this.updateAlt(false);
    }

    render() {
      this.renderCommon();
    }

    /** The canvas's aria-label: the title and the latest value of each series;
     *  rewritten at most every ALT_EVERY_MS (screen readers are not flooded). */
    updateAlt(force) {
      if (!this.canvas) return;
      const now = Date.now();
      if (!force && now - this.altAt < ALT_EVERY_MS) {
        if (!this.altTimer) this.altTimer = setTimeout(() => { this.altTimer = 0; this.updateAlt(true); }, ALT_EVERY_MS - (now - this.altAt));
        return;
      }
      this.altAt = now;
      const gs = this.groups();
      const parts = gs.map((g) => {
        const v = fmt(this.latest.get(g).value, this.unit);
        return g === '' ? v : `${g} ${v}`;
      });
      const chart = this.display.chart || 'chart';
      const label = `${this.def.title}, ${chart}: ${parts.length ? `latest ${parts.join(', ')}` : 'no data yet'}${this.isStale() && parts.length ? ' (stale)' : ''}`;
      if (this.canvas.getAttribute('aria-label') !== label) this.canvas.setAttribute('aria-label', label);
      this.announce();
    }

    /** Puts the text alternative in the polite live region when the widget has the
     *  focus (or is full screen) and it changed, at most every ANNOUNCE_EVERY_MS. */
    announce() {
      if (!this.announceEl) return;
      if (!this.root.contains(document.activeElement) && !this.root.classList.contains('fullscreen')) return;
      const wait = ANNOUNCE_EVERY_MS - (Date.now() - this.announceAt);
      if (wait > 0) {
        if (!this.announceTimer) this.announceTimer = setTimeout(() => { this.announceTimer = 0; this.announce(); }, wait);
        return;
      }
      const text = this.canvas.getAttribute('aria-label');
      if (text === this.announceEl.textContent) return;
      this.announceAt = Date.now();
      this.announceEl.textContent = text;
    }
  }

  function describe(def) {
    const agg = def.aggregation || '';
    const win = def.window_seconds ? `${def.window_seconds} s` : '';
    const filter = def.tag_filter && Object.keys(def.tag_filter).length
      ? ' · ' + Object.entries(def.tag_filter).map(([k, v]) => `${k}=${v}`).join(', ')
      : '';
    const by = def.group_by ? ` by ${def.group_by}` : '';
    return `${agg} of ${def.metric_name} over ${win}${by}${filter} · every ${def.refresh_interval_seconds} s`;
  }

  /** Line and area charts: recent history per group, drawn on a canvas. */
  class TimeSeriesView extends View {
    constructor(def, root, area) {
      super(def, root);
      this.area = area;
      this.addCanvas();
      this.hidden = new Set(); // groups switched off in the legend
      this.legendItems = new Map(); // group -> {button, val}
      this.headEl = null;
      // hover: a crosshair and a tooltip with every series' value at that time
      this.cross = el('div', 'crosshair');
      this.cross.hidden = true;
      this.tip = el('div', 'chart-tip');
      this.tip.hidden = true;
      this.tip.setAttribute('aria-hidden', 'true');
      this.body.append(this.cross, this.tip);
      this.canvas.addEventListener('pointermove', (e) => this.hover(e));
      this.canvas.addEventListener('pointerleave', () => this.unhover());
      // drag across the chart (mouse or pen) to zoom into the loaded history;
      // double-click, Escape or the note's button returns to live
      this.zoom = null; // [left, right] in server time while zoomed, else null (live)
      this.drag = null;
      this.sel = el('div', 'zoom-sel');
      this.sel.hidden = true;
      this.zoomNote = el('button', 'zoom-note');
      this.zoomNote.type = 'button';
      this.zoomNote.hidden = true;
      this.zoomNote.addEventListener('click', () => this.unzoom());
      this.body.append(this.sel, this.zoomNote);
      this.canvas.addEventListener('pointerdown', (e) => this.dragStart(e));
      this.canvas.addEventListener('pointerup', () => this.dragEnd());
      this.canvas.addEventListener('pointercancel', () => this.dragEnd(true));
      this.canvas.addEventListener('dblclick', () => this.unzoom());
    }

    dragStart(e) {
      if (e.button !== 0 || e.pointerType === 'touch' || !this.geom) return;
      const x = e.clientX - this.canvas.getBoundingClientRect().left;
      this.drag = { x0: x, x1: x };
      this.canvas.setPointerCapture(e.pointerId);
      e.preventDefault();
    }

    dragEnd(cancel) {
      const d = this.drag;
      if (!d) return;
      this.drag = null;
      this.sel.hidden = true;
      const g = this.geom;
      if (cancel || !g || Math.abs(d.x1 - d.x0) < 6) return;
      const tOf = (x) => clamp(g.left + ((x * g.dpr - g.padL) / g.pw) * g.span, g.left, g.left + g.span);
      const a = tOf(Math.min(d.x0, d.x1));
      const b = tOf(Math.max(d.x0, d.x1));
      if (b - a < 1000) return;
      this.zoom = [a, b];
      const same = dayOf(a) === dayOf(b);
      setText(this.zoomNote, `Zoomed ${same ? fmtTime(a) : fmtTimeFull(a)} – ${same ? fmtTime(b) : fmtTimeFull(b)} · double-click or press Escape to return to live`);
      this.zoomNote.title = 'Back to live';
      this.zoomNote.hidden = false;
      this.root.classList.add('zoomed');
      markDirty(this);
    }

    /** Back to the live view. */
    unzoom() {
      if (!this.zoom) return;
      const hadFocus = document.activeElement === this.zoomNote;
      this.zoom = null;
      this.zoomNote.hidden = true;
      this.root.classList.remove('zoomed');
      if (hadFocus) $('.expand', this.root).focus();
      markDirty(this);
    }

    render() {
      this.renderCommon();
      this.renderLegend();
      if (!this.fitCanvas()) return;
      drawTimeSeries(this, {
        area: this.area,
        series: this.groups().filter((g) => !this.hidden.has(g)).map((g) => ({
          name: g,
          ring: this.series.get(g),
          color: colorOfGroup(g, this.display.color || C.accent),
        })),
      });
      if (this.hoverX !== undefined) this.showTip(this.hoverX);
    }

    /** Legend entries are toggle buttons (aria-pressed: shown); updated in place so
     *  a focused button keeps its focus. */
    renderLegend() {
      const gs = this.groups();
      for (const [g, item] of this.legendItems) {
        if (!gs.includes(g)) {
          item.button.remove();
          this.legendItems.delete(g);
        }
      }
      let prev = null;
      for (const g of gs) {
        const l = this.latest.get(g);
        if (g === '') {
          if (!this.headEl) {
            this.headEl = el('b');
            this.headEl.dataset.role = 'value';
            this.headValue.replaceChildren(this.headEl);
          }
          this.headEl.textContent = fmt(l.value, this.unit);
          this.headEl.style.color = thresholdColor(this.display, l.value, '');
          continue;
        }
        let item = this.legendItems.get(g);
        if (!item) {
          const button = el('button', 'legend-item');
          button.type = 'button';
          button.dataset.group = g;
          const sw = el('i');
          sw.style.background = colorOfGroup(g, this.display.color || C.accent);
          const val = el('b');
          val.dataset.role = 'value';
          button.append(sw, el('span', null, g), val);
          // a click toggles the series; Shift/Alt/Ctrl/Cmd+click (or Shift+Enter,
          // Shift+Space) isolates it, and the same again shows every series
          button.addEventListener('click', (e) => {
            if (e.shiftKey || e.altKey || e.ctrlKey || e.metaKey) this.isolate(g);
            else this.toggle(g);
          });
          button.addEventListener('keydown', (e) => {
            if ((e.key === 'Enter' || e.key === ' ') && (e.shiftKey || e.altKey)) {
              e.preventDefault();
              this.isolate(g);
            }
          });
          item = { button, val };
          this.legendItems.set(g, item);
        }
        const shown = !this.hidden.has(g);
        item.button.setAttribute('aria-pressed', String(shown));
        item.button.title = `${shown ? 'Hide' : 'Show'} ${g}; Shift+click or Shift+Enter: ${this.isolated() === g ? 'show all' : `only ${g}`}`;
        item.val.textContent = fmt(l.value, this.unit);
        const want = prev ? prev.nextSibling : this.legend.firstChild;
        if (want !== item.button) this.legend.insertBefore(item.button, want);
        prev = item.button;
      }
      if (!gs.includes('') && this.headEl) {
        this.headEl = null;
        this.headValue.replaceChildren();
      }
    }

    toggle(g) {
      if (this.hidden.has(g)) this.hidden.delete(g);
      else this.hidden.add(g);
      this.renderLegend(); // aria-pressed follows at once
      markDirty(this);
    }

    /** The one group shown when every other one is hidden, else null. */
    isolated() {
      const shown = this.groups().filter((x) => !this.hidden.has(x));
      return shown.length === 1 && this.hidden.size > 0 ? shown[0] : null;
    }

    /** Shows only `g`; when only `g` is shown already, shows every series again. */
    isolate(g) {
      if (this.isolated() === g) this.hidden.clear();
      else this.hidden = new Set(this.groups().filter((x) => x !== g));
      this.renderLegend();
      markDirty(this);
    }

    hover(e) {
      const r = this.canvas.getBoundingClientRect();
      this.hoverX = e.clientX - r.left;
      if (this.drag) {
        this.drag.x1 = clamp(this.hoverX, 0, r.width);
        const x = Math.min(this.drag.x0, this.drag.x1);
        this.sel.style.transform = `translateX(${Math.round(x)}px)`;
        this.sel.style.width = `${Math.round(Math.abs(this.drag.x1 - this.drag.x0))}px`;
        this.sel.hidden = false;
      }
      this.showTip(this.hoverX);
    }

    unhover() {
      this.hoverX = undefined;
      this.cross.hidden = true;
      this.tip.hidden = true;
    }

    /** The crosshair at `x` (CSS px in the canvas) and the values of every shown
     *  series at that time, with the unit. */
    showTip(x) {
      const g = this.geom;
      if (!g) return;
      const px = x * g.dpr;
      if (px < g.padL || px > g.padL + g.pw) {
        this.cross.hidden = true;
        this.tip.hidden = true;
        return;
      }
      const t = g.left + ((px - g.padL) / g.pw) * g.span;
      const refreshMs = Math.max(0.1, this.def.refresh_interval_seconds || 1) * 1000;
      const rows = [el('div', 'tip-time', fmtTimeFull(t))];
      for (const grp of this.groups()) {
        if (this.hidden.has(grp)) continue;
        const ring = this.series.get(grp);
        const p = ring ? ring.pointAt(t) : null;
        const v = p && !Number.isNaN(p[1]) && !ring.breaksBetween(p[0], t, refreshMs) ? p[1] : null;
        const row = el('div', 'tip-row');
        const sw = el('i');
        sw.style.background = colorOfGroup(grp, this.display.color || C.accent);
        row.append(sw, el('span', null, grp === '' ? this.def.title : grp), el('b', null, v === null ? 'no data' : fmt(v, this.unit)));
        rows.push(row);
      }
      this.tip.replaceChildren(...rows);
      this.cross.hidden = false;
      this.tip.hidden = false;
      this.cross.style.transform = `translateX(${Math.round(x)}px)`;
      const bw = this.body.clientWidth;
      const tw = this.tip.offsetWidth;
      const tx = x + 12 + tw > bw ? Math.max(0, x - 12 - tw) : x + 12;
      this.tip.style.transform = `translateX(${Math.round(tx)}px)`;
    }
  }

  /** Draws time series with axes, threshold lines and optional area fill. */
  function drawTimeSeries(view, opts) {
    const { ctx, w, h, dpr } = view;
    const display = view.display;
    const series = opts.series.filter((s) => s.ring && s.ring.len);
    if (!series.length) return drawEmpty(view);
    let right;
    let span;
    if (view.zoom) {
      right = view.zoom[1];
      span = view.zoom[1] - view.zoom[0];
    } else {
      right = Math.max(...series.map((s) => s.ring.lastT));
      const first = Math.min(...series.map((s) => s.ring.firstT));
      span = clamp(right - first, MIN_SPAN_MS, state.range);
    }
    const left = right - span;
    view.span = span;

    let dmin = Infinity;
    let dmax = -Infinity;
    for (const s of series) {
      s.ring.forEach((t, v) => {
        if (t < left || t > right || Number.isNaN(v)) return;
        if (v < dmin) dmin = v;
        if (v > dmax) dmax = v;
      });
    }
    if (dmin === Infinity) {
      dmin = 0;
      dmax = 1;
    }
    // Threshold lines are always in view: the axis reaches the highest threshold
    // (display bands above the bottom one, and the widget's alert rules).
    const lines = thresholdLines(view);
    let lo = display.min ?? Math.min(0, dmin);
    let hi = display.max ?? dmax;
    if (display.max === undefined || display.max === null) {
      for (const t of lines) if (t.value > hi) hi = t.value;
      hi = hi * 1.12;
    }
    if (display.min === undefined || display.min === null) {
      for (const t of lines) if (t.value < lo) lo = t.value;
    }
    if (!(hi > lo)) hi = lo + 1;
    const step = niceStep((hi - lo) / 4);
    hi = Math.ceil(hi / step) * step;
    lo = Math.floor(lo / step) * step;

    const unit = view.unit;
    const yLabel = display.y_axis_label || '';
    ctx.font = `${10.5 * dpr}px ${FONT}`;
    let labelW = 0;
    for (let v = lo; v <= hi + step / 2; v += step) labelW = Math.max(labelW, ctx.measureText(fmtTick(v, step, unit)).width);
    const yLabelW = yLabel ? 14 * dpr : 0;
    const padL = labelW + 12 * dpr + yLabelW;
    const padR = 10 * dpr;
    const padT = 6 * dpr;
    const padB = 18 * dpr;
    const pw = w - padL - padR;
    const ph = h - padT - padB;
    if (pw < 10 || ph < 10) return;
    const xOf = (t) => padL + ((t - left) / span) * pw;
    view.geom = { left, span, padL, pw, padT, ph, dpr, lo, hi };
    const yOf = (v) => padT + ph - ((v - lo) / (hi - lo)) * ph;

    ctx.font = `${10.5 * dpr}px ${FONT}`;
    ctx.textBaseline = 'middle';
    ctx.lineWidth = 1;
    // horizontal grid and y labels
    ctx.textAlign = 'right';
    for (let v = lo; v <= hi + step / 2; v += step) {
      const y = Math.round(yOf(v)) + 0.5;
      ctx.strokeStyle = C.grid;
      ctx.beginPath();
      ctx.moveTo(padL, y);
      ctx.lineTo(w - padR, y);
      ctx.stroke();
      ctx.fillStyle = C.muted;
      ctx.fillText(fmtTick(v, step, unit), padL - 6 * dpr, y);
    }
    if (yLabel) {
      ctx.save();
      ctx.translate(9 * dpr, padT + ph / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = 'center';
      ctx.fillStyle = C.muted;
      ctx.fillText(yLabel, 0, 0, ph);
      ctx.restore();
    }
    // alert regions: from fire to resolve (or now), shaded
    for (const [a, b] of alertSpans(view.def.widget_id)) {
      const x0 = Math.max(padL, xOf(a));
      const x1 = Math.min(padL + pw, xOf(Math.min(b, right)));
      if (x1 <= x0) continue;
      ctx.fillStyle = C.alertFill;
      ctx.fillRect(x0, padT, Math.max(1, x1 - x0), ph);
      ctx.fillStyle = C.alertEdge;
      ctx.fillRect(x0, padT, Math.max(1, dpr), ph);
    }
    // time labels: the date on the first label and where the day changes, when the range crosses midnight
    ctx.textAlign = 'center';
    ctx.textBaseline = 'alphabetic';
    const crosses = dayOf(left) !== dayOf(right);
    const sample = ctx.measureText(fmtAxisTime(right, 1000, crosses)).width + 18 * dpr;
    const tStep = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600].map((s) => s * 1000).find((s) => (s / span) * pw >= sample) || 43200000;
    let prevDay = null;
    for (let t = Math.ceil(left / tStep) * tStep; t <= right; t += tStep) {
      const x = xOf(t);
      if (x < padL + sample / 2 - 6 * dpr || x > w - padR - sample / 2 + 6 * dpr) continue;
      const day = dayOf(t);
      ctx.fillStyle = C.muted;
      ctx.fillText(fmtAxisTime(t, tStep, crosses && day !== prevDay), x, h - 4 * dpr);
      prevDay = day;
      ctx.strokeStyle = C.grid;
      ctx.beginPath();
      ctx.moveTo(Math.round(x) + 0.5, padT);
      ctx.lineTo(Math.round(x) + 0.5, padT + ph);
      ctx.stroke();
    }
    // threshold lines
    ctx.setLineDash([4 * dpr, 4 * dpr]);
    for (const t of lines) {
      if (t.value < lo || t.value > hi) continue;
      const y = Math.round(yOf(t.value)) + 0.5;
      ctx.strokeStyle = rgba(t.color, 0.65);
      ctx.beginPath();
      ctx.moveTo(padL, y);
      ctx.lineTo(w - padR, y);
      ctx.stroke();
    }
    ctx.setLineDash([]);

    ctx.save();
    ctx.beginPath();
    ctx.rect(padL, padT - 2 * dpr, pw, ph + 4 * dpr);
    ctx.clip();
    const refreshMs = Math.max(0.1, view.def.refresh_interval_seconds || 1) * 1000;
    view.segments = {};
    for (const s of series) {
      const runs = seriesRuns(s.ring, left, right, refreshMs);
      view.segments[s.name] = runs.map((r) => [r[0][0], r[r.length - 1][0]]);
      const last = runs[runs.length - 1];
      for (const r of runs) {
        ctx.beginPath();
        r.forEach(([t, v], i) => {
          const x = xOf(t);
          const y = yOf(v);
          if (i === 0) ctx.moveTo(x, y);
          else ctx.lineTo(x, y);
        });
        ctx.strokeStyle = s.color;
        ctx.lineWidth = 1.75 * dpr;
        ctx.lineJoin = 'round';
        ctx.stroke();
        if (opts.area) {
          ctx.lineTo(xOf(r[r.length - 1][0]), yOf(Math.max(lo, 0)));
          ctx.lineTo(xOf(r[0][0]), yOf(Math.max(lo, 0)));
          ctx.closePath();
          const g = ctx.createLinearGradient(0, padT, 0, padT + ph);
          g.addColorStop(0, rgba(s.color, series.length > 1 ? 0.22 : 0.38));
          g.addColorStop(1, rgba(s.color, 0.02));
          ctx.fillStyle = g;
          ctx.fill();
        }
      }
      if (last) {
        const [t, v] = last[last.length - 1];
        ctx.fillStyle = s.color;
        ctx.beginPath();
        ctx.arc(xOf(t), yOf(v), 2.6 * dpr, 0, Math.PI * 2);
        ctx.fill();
      }
    }
    ctx.restore();
  }

  /** The lines to draw across a chart: display thresholds above the bottom band
   *  and the thresholds of the widget's alert rules. */
  function thresholdLines(view) {
    const out = [];
    const ts = (view.display.thresholds || []).slice().sort((a, b) => a.value - b.value);
    ts.slice(1).forEach((t) => out.push({ value: t.value, color: t.color }));
    const rules = (state.dashboard && state.dashboard.alert_rules) || [];
    for (const r of rules) {
      if (r.widget_id === view.def.widget_id && num(r.threshold) !== null && !out.some((t) => t.value === r.threshold)) {
        out.push({ value: r.threshold, color: C.bad });
      }
    }
    return out;
  }

  /** [fired, resolved] spans (server time) of the widget's alerts; Infinity while firing. */
  function alertSpans(widgetId) {
    const spans = [];
    const open = new Map();
    const events = state.alertHistory.filter((a) => a.widget === widgetId).slice().sort((x, y) => x.at - y.at);
    for (const a of events) {
      if (a.state === 'firing') {
        if (!open.has(a.key)) open.set(a.key, a.at);
      } else if (open.has(a.key)) {
        spans.push([open.get(a.key), a.at]);
        open.delete(a.key);
      }
    }
    for (const [key, at] of open) spans.push([at, state.alertsFiring.has(key) ? Infinity : at]);
    return spans;
  }

  /** Splits a ring into runs of points to join with lines, from `left` on: "no
   *  data" (NaN), a missing history step and a connection outage end a run (see
   *  `Ring.breaksBetween`), so a gap is drawn as a gap, never bridged. */
  function seriesRuns(ring, left, right, refreshMs) {
    const runs = [];
    let run = null;
    let prevT = null;
    let prevV = NaN;
    ring.forEach((t, v) => {
      const broken = prevT !== null && ring.breaksBetween(prevT, t, refreshMs);
      if (t < left) {
        prevT = t;
        prevV = v;
        return;
      }
      if (Number.isNaN(v)) {
        run = null;
      } else {
        if (!run || broken) {
          run = [];
          runs.push(run);
          // connect from the value in force at the left edge
          if (prevT !== null && prevT < left && !broken && !Number.isNaN(prevV)) run.push([left, prevV]);
        }
        run.push([t, v]);
      }
      prevT = t;
      prevV = v;
    });
    if (!runs.length && prevT !== null && !Number.isNaN(prevV) && !ring.breaksBetween(prevT, right, refreshMs)) runs.push([[left, prevV]]);
    const last = runs[runs.length - 1];
    // unchanged values are not re-sent: the last one holds until the newest
    // time drawn, unless the stream was down since
    if (last && prevT !== null && !Number.isNaN(prevV) && !ring.breaksBetween(prevT, right, refreshMs)) {
      const lt = last[last.length - 1][0];
      if (right > lt) last.push([right, last[last.length - 1][1]]);
    }
    return runs;
  }

  function drawEmpty(view) {
    const { ctx, w, h, dpr } = view;
    ctx.fillStyle = C.faint;
    ctx.font = `${12 * dpr}px ${FONT}`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(isLive() ? 'waiting for data…' : 'no data', w / 2, h / 2);
  }

  /** One big number coloured by thresholds, over a faint sparkline. */
  class StatView extends View {
    constructor(def, root) {
      super(def, root);
      this.addCanvas();
      const box = el('div', 'stat');
      this.valueEl = el('div', 'value');
      this.valueEl.dataset.role = 'value';
      this.numEl = el('span', null, '—');
      this.unitEl = el('span', 'unit', this.unit);
      this.valueEl.append(this.numEl, this.unitEl);
      this.subEl = el('div', 'sub', '\u00a0');
      box.append(this.valueEl, this.subEl);
      this.body.appendChild(box);
      // the description moves to the title's tooltip to give the number room
      $('.widget-title', root).title = `${def.title}\n${this.foot.textContent}`;
      this.foot.remove();
    }

    render() {
      this.renderCommon();
      const p = this.primary();
      const v = p ? p.value : null;
      const text = fmt(v, '');
      this.numEl.textContent = text;
      this.unitEl.textContent = v === null ? '' : this.unit === '%' ? '%' : this.unit;
      const color = thresholdColor(this.display, v, this.display.color || C.text);
      this.valueEl.style.color = color;
      // trend against the value about a minute ago
      const ring = this.series.get(p ? (this.latest.has('') ? '' : this.groups()[0]) : '');
      let sub = p && p.value === null ? 'no data in window' : '\u00a0';
      if (ring && v !== null) {
        const before = ring.valueAt(ring.lastT - 60000);
        if (before !== null && ring.firstT <= ring.lastT - 60000 && before !== 0) {
          const pct = ((v - before) / Math.abs(before)) * 100;
          const arrow = pct > 0.05 ? '▲' : pct < -0.05 ? '▼' : '■';
          sub = `${arrow} ${Math.abs(pct).toFixed(1)}% vs 1 min ago`;
        } else {
          sub = `${this.def.aggregation} over ${this.def.window_seconds} s`;
        }
      }
      this.subEl.textContent = sub;
      if (!this.fitCanvas() || !ring || ring.len < 2) return;
      drawSparkline(this, ring, color === C.text ? C.accent : color);
    }
  }

  /** Min and max of the ring's values at or after `left` (NaN skipped), widened
   *  by 1 each way when flat; null when there are none. */
  function rangeSince(ring, left) {
    let lo = Infinity;
    let hi = -Infinity;
    ring.forEach((t, v) => {
      if (t >= left && !Number.isNaN(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    });
    if (lo === Infinity) return null;
    if (hi - lo < 1e-9) return { lo: lo - 1, hi: hi + 1 };
    return { lo, hi };
  }

  function drawSparkline(view, ring, color) {
    const { ctx, w, h, dpr } = view;
    const right = ring.lastT;
    const left = right - Math.min(state.range, Math.max(MIN_SPAN_MS, right - ring.firstT));
    view.span = right - left;
    const range = rangeSince(ring, left);
    if (!range) return;
    const { lo, hi } = range;
    const top = h * 0.5;
    const bottom = h - 2 * dpr;
    const xOf = (t) => ((t - left) / (right - left || 1)) * w;
    const yOf = (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
    for (const [a, b] of alertSpans(view.def.widget_id)) {
      const x0 = Math.max(0, xOf(a));
      const x1 = Math.min(w, xOf(Math.min(b, right)));
      if (x1 <= x0) continue;
      ctx.fillStyle = C.alertFill;
      ctx.fillRect(x0, 0, Math.max(1, x1 - x0), h);
      ctx.fillStyle = C.alertEdge;
      ctx.fillRect(x0, 0, Math.max(1, dpr), h);
    }
    // the same runs as the line charts: a gap (no data, an outage) breaks the line
    const refreshMs = Math.max(0.1, view.def.refresh_interval_seconds || 1) * 1000;
    const runs = seriesRuns(ring, left, right, refreshMs);
    view.segments = { '': runs.map((r) => [r[0][0], r[r.length - 1][0]]) };
    const g = ctx.createLinearGradient(0, top, 0, bottom);
    g.addColorStop(0, rgba(color, 0.13));
    g.addColorStop(1, rgba(color, 0));
    for (const r of runs) {
      ctx.beginPath();
      r.forEach(([t, v], i) => {
        if (i === 0) ctx.moveTo(xOf(t), yOf(v));
        else ctx.lineTo(xOf(t), yOf(v));
      });
      ctx.strokeStyle = rgba(color, 0.4);
      ctx.lineWidth = 1.5 * dpr;
      ctx.stroke();
      ctx.lineTo(xOf(r[r.length - 1][0]), bottom);
      ctx.lineTo(xOf(r[0][0]), bottom);
      ctx.closePath();
      ctx.fillStyle = g;
      ctx.fill();
    }
  }

  /** A 270° dial between display min and max, with threshold bands. */
  class GaugeView extends View {
    constructor(def, root) {
      super(def, root);
      this.addCanvas();
      const label = el('div', 'gauge-label');
      this.valueEl = el('span', 'value', '—');
      this.valueEl.dataset.role = 'value';
      this.unitEl = el('span', 'unit', this.unit);
      label.append(this.valueEl, this.unitEl);
      this.label = label;
      this.body.appendChild(label);
    }

    render() {
      this.renderCommon();
      const p = this.primary();
      const v = p ? p.value : null;
      this.valueEl.textContent = fmt(v, '');
      this.unitEl.textContent = v === null ? '' : this.unit;
      const color = thresholdColor(this.display, v, this.display.color || C.accent);
      this.valueEl.style.color = color === C.accent ? C.text : color;
      if (!this.fitCanvas()) return;
      const { ctx, w, h, dpr } = this;
      const min = this.display.min ?? 0;
      let max = this.display.max;
      if (max === undefined || max === null) {
        const seen = Math.max(...[...this.series.values()].map((r) => {
          let m = -Infinity;
          r.forEach((t, x) => { if (!Number.isNaN(x)) m = Math.max(m, x); });
          return m;
        }), min + 1);
        max = min + niceStep((seen - min) * 1.2 / 5) * 5;
      }
      const lw = Math.max(6 * dpr, Math.min(w, h) * 0.075);
      const r = Math.max(10, Math.min(w / 2 - lw * 1.6, (h - lw * 1.2) / (1 + Math.SQRT1_2) - lw * 0.5));
      const cx = w / 2;
      const cy = lw * 1.2 + r;
      const a0 = Math.PI * 0.75;
      const sweep = Math.PI * 1.5;
      const angle = (x) => a0 + clamp((x - min) / (max - min), 0, 1) * sweep;
      ctx.lineCap = 'round';
      // track
      ctx.strokeStyle = C.track;
      ctx.lineWidth = lw;
      ctx.beginPath();
      ctx.arc(cx, cy, r, a0, a0 + sweep);
      ctx.stroke();
      // threshold bands, outside the track
      const ts = (this.display.thresholds || []).slice().sort((a, b) => a.value - b.value);
      ctx.lineCap = 'butt';
      ctx.lineWidth = Math.max(2 * dpr, lw * 0.22);
      ts.forEach((t, i) => {
        const from = angle(Math.max(min, t.value));
        const to = angle(i + 1 < ts.length ? ts[i + 1].value : max);
        if (to <= from) return;
        ctx.strokeStyle = rgba(t.color, 0.8);
        ctx.beginPath();
        ctx.arc(cx, cy, r + lw * 0.95, from + 0.004, to - 0.004);
        ctx.stroke();
      });
      // value arc
      if (v !== null) {
        ctx.lineCap = 'round';
        ctx.lineWidth = lw;
        const g = ctx.createLinearGradient(cx - r, 0, cx + r, 0);
        g.addColorStop(0, rgba(color, 0.55));
        g.addColorStop(1, color);
        ctx.strokeStyle = g;
        ctx.beginPath();
        ctx.arc(cx, cy, r, a0, Math.max(a0 + 0.001, angle(v)));
        ctx.stroke();
      }
      // min / max labels
      ctx.fillStyle = C.faint;
      ctx.font = `${10.5 * dpr}px ${FONT}`;
      ctx.textBaseline = 'top';
      const ly = cy + r * Math.SQRT1_2 + lw * 0.6;
      ctx.textAlign = 'center';
      // kept inside the canvas (not clipped on narrow cards)
      const place = (text, x) => {
        const half = ctx.measureText(text).width / 2 + 2 * dpr;
        ctx.fillText(text, clamp(x, half, w - half), ly);
      };
      place(fmt(min, ''), cx - r * Math.SQRT1_2);
      place(fmt(max, ''), cx + r * Math.SQRT1_2);
      // centre the DOM value label in the dial
      const top = `${Math.round(cy / dpr) - 16}px`;
      if (this.label.style.top !== top) {
        this.label.style.bottom = 'auto';
        this.label.style.top = top;
      }
    }
  }

  /** One row per group: name, value and a bar, coloured by thresholds. */
  class TableView extends View {
    constructor(def, root) {
      super(def, root);
      const wrap = el('div', 'table-wrap');
      this.table = el('table', 'values');
      const head = el('thead');
      const tr = el('tr');
      const groupName = def.group_by ? def.group_by.replace(/^./, (c) => c.toUpperCase()) : 'Series';
      tr.append(el('th', null, groupName), el('th', 'num', `${def.aggregation}${this.unit ? ` (${this.unit})` : ''}`), el('th', null, ''), el('th', null, 'trend'));
      head.appendChild(tr);
      this.tbody = el('tbody');
      this.table.append(head, this.tbody);
      wrap.appendChild(this.table);
      this.body.appendChild(wrap);
      this.rows = new Map();
      $('.widget-title', root).title = `${def.title}\n${this.foot.textContent}`;
      this.foot.remove();
    }

    render() {
      this.renderCommon();
      const gs = this.groups();
      if (!gs.length) {
        if (!this.tbody.firstChild) {
          const tr = el('tr');
          const td = el('td', null, isLive() ? 'waiting for data…' : 'no data');
          td.colSpan = 3;
          td.style.color = C.faint;
          tr.appendChild(td);
          this.tbody.appendChild(tr);
        }
        return;
      }
      let scaleMax = this.display.max ?? 0;
      if (!this.display.max) {
        for (const g of gs) scaleMax = Math.max(scaleMax, this.latest.get(g).value ?? 0);
        const top = (this.display.thresholds || []).reduce((m, t) => Math.max(m, t.value), 0);
        if (top > scaleMax && top < scaleMax * 2) scaleMax = top;
        scaleMax = scaleMax * 1.1 || 1;
      }
      const order = gs.join('\u0000');
      if (order !== this.order) {
        this.order = order;
        this.tbody.replaceChildren();
        this.rows.clear();
        for (const g of gs) {
          const tr = el('tr');
          const name = el('td', 'group');
          const sw = el('i');
          sw.style.cssText = `display:inline-block;width:8px;height:8px;border-radius:2px;margin-right:8px;background:${colorOfGroup(g, C.accent)}`;
          name.append(sw, document.createTextNode(g === '' ? this.def.metric_name : g));
          const val = el('td', 'num value');
          val.dataset.role = 'value';
          const barTd = el('td', 'bar');
          const track = el('div', 'bar-track');
          const fill = el('div', 'bar-fill');
          track.appendChild(fill);
          barTd.appendChild(track);
          const sparkTd = el('td', 'spark');
          const spark = el('canvas');
          spark.setAttribute('aria-hidden', 'true');
          sparkObserver.observe(spark);
          sparkTd.appendChild(spark);
          tr.append(name, val, barTd, sparkTd);
          this.tbody.appendChild(tr);
          this.rows.set(g, { tr, val, fill, spark });
        }
      }
      for (const g of gs) {
        const l = this.latest.get(g);
        const row = this.rows.get(g);
        const color = thresholdColor(this.display, l.value, colorOfGroup(g, C.accent));
        row.val.textContent = fmt(l.value, this.unit);
        row.val.style.color = (this.display.thresholds || []).length ? color : C.text;
        const scaleX = `scaleX(${l.value === null ? 0 : clamp(l.value / scaleMax, 0, 1).toFixed(3)})`;
        if (row.fill.style.transform !== scaleX) row.fill.style.transform = scaleX;
        if (row.fill.style.background !== color) row.fill.style.background = color;
        row.tr.classList.toggle('stale', !!l.stale);
        drawRowSpark(row.spark, this.series.get(g), colorOfGroup(g, C.accent), Math.max(0.1, this.def.refresh_interval_seconds || 1) * 1000);
      }
    }
  }

  // Table sparkline sizes, from an observer (no forced layout while drawing).
  const sparkObserver = new ResizeObserver((entries) => {
    for (const e of entries) {
      const c = e.target;
      if (c.cssW === e.contentRect.width && c.cssH === e.contentRect.height) continue;
      c.cssW = e.contentRect.width;
      c.cssH = e.contentRect.height;
      const view = state.views.get(c.closest('[data-widget-id]')?.dataset.widgetId);
      if (view) markDirty(view);
    }
  });

  /** A tiny trend line in a table cell. */
  function drawRowSpark(canvas, ring, color, refreshMs) {
    const r = { width: canvas.cssW || 0, height: canvas.cssH || 0 };
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width * dpr));
    const h = Math.max(1, Math.round(r.height * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, w, h);
    if (!ring || ring.len < 2 || w < 4) return;
    const right = ring.lastT;
    const left = right - state.range;
    const range = rangeSince(ring, left);
    if (!range) return;
    const { lo, hi } = range;
    const x0 = Math.max(left, ring.firstT);
    const xOf = (t) => ((t - x0) / (right - x0 || 1)) * (w - 2 * dpr) + dpr;
    const yOf = (v) => h - dpr - ((v - lo) / (hi - lo)) * (h - 2 * dpr);
    ctx.beginPath();
    for (const r of seriesRuns(ring, left, right, refreshMs)) {
      r.forEach(([t, v], i) => {
        if (i === 0) ctx.moveTo(xOf(t), yOf(v));
        else ctx.lineTo(xOf(t), yOf(v));
      });
    }
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.25 * dpr;
    ctx.stroke();
  }

  /** Rows per group, columns per time slot, colour per value. */
  class HeatmapView extends View {
    constructor(def, root) {
      super(def, root);
      this.addCanvas();
    }

    render() {
      this.renderCommon();
      const gs = this.groups();
      const scale = this.scale(gs);
      this.headValue.replaceChildren();
      if (gs.length) {
        const s = el('span', 'scale');
        s.append(el('span', null, fmt(scale.lo, '')), el('i'), el('span', null, fmt(scale.hi, this.unit)));
        this.headValue.appendChild(s);
      }
      if (!this.fitCanvas()) return;
      if (!gs.length) return drawEmpty(this);
      const { ctx, w, h, dpr } = this;
      ctx.font = `${11 * dpr}px ${FONT}`;
      const padL = Math.max(...gs.map((g) => ctx.measureText(g === '' ? 'value' : g).width)) + 14 * dpr;
      const padB = 18 * dpr;
      const padR = 4 * dpr;
      const pw = w - padL - padR;
      const ph = h - padB;
      // Same time span as the line charts; one column per refresh interval, at least 6 px wide.
      const refresh = Math.max(0.1, this.def.refresh_interval_seconds || 1) * 1000;
      const right = this.lastT;
      const first = Math.min(...gs.map((g) => this.series.get(g).firstT));
      const span = clamp(right - first, MIN_SPAN_MS, state.range);
      this.span = span;
      const cols = Math.max(1, Math.min(Math.floor(pw / (6 * dpr)), Math.round(span / refresh)));
      const bin = span / cols;
      const left = right - span;
      const cw = pw / cols;
      const rh = ph / gs.length;
      const gapPx = Math.max(1, dpr);
      gs.forEach((g, row) => {
        const ring = this.series.get(g);
        // carry each value forward: unchanged values are not re-sent
        const cells = new Array(cols).fill(null);
        // ... but not across a gap: missing history steps or an outage leave cells empty
        let k = 0;
        let cur = null;
        let curT = null;
        const pts = [];
        ring.forEach((t, v) => pts.push([t, v]));
        for (let c = 0; c < cols; c++) {
          const end = left + (c + 1) * bin;
          let touched = false;
          while (k < pts.length && pts[k][0] <= end) {
            cur = Number.isNaN(pts[k][1]) ? null : pts[k][1];
            curT = pts[k][0];
            touched = true;
            k++;
          }
          if (touched) cells[c] = cur;
          else if (cur !== null && curT !== null && !ring.breaksBetween(curT, end, refresh)) cells[c] = cur;
        }
        this.cells = this.cells || {};
        this.cells[g] = cells.map((v) => v !== null);
        for (let c = 0; c < cols; c++) {
          const v = cells[c];
          const x = padL + c * cw;
          const y = row * rh;
          ctx.fillStyle = v === null ? C.empty : heatColor((v - scale.lo) / (scale.hi - scale.lo || 1));
          ctx.fillRect(x, y, Math.max(1, cw - gapPx), Math.max(1, rh - gapPx * 2));
        }
        ctx.fillStyle = C.muted;
        ctx.font = `${11 * dpr}px ${FONT}`;
        ctx.textAlign = 'right';
        ctx.textBaseline = 'middle';
        ctx.fillText(g === '' ? 'value' : g, padL - 8 * dpr, row * rh + rh / 2);
      });
      ctx.fillStyle = C.faint;
      ctx.font = `${10.5 * dpr}px ${FONT}`;
      ctx.textBaseline = 'alphabetic';
      ctx.textAlign = 'left';
      ctx.fillText(fmtTime(left), padL, h - 4 * dpr);
      ctx.textAlign = 'right';
      ctx.fillText(fmtTime(right), w - padR, h - 4 * dpr);
    }

    scale(gs) {
      let lo = this.display.min;
      let hi = this.display.max;
      if (lo === undefined || lo === null || hi === undefined || hi === null) {
        let mn = Infinity;
        let mx = -Infinity;
        const from = this.lastT - state.range;
        for (const g of gs) {
          this.series.get(g).forEach((t, v) => {
            if (t >= from && !Number.isNaN(v)) {
              mn = Math.min(mn, v);
              mx = Math.max(mx, v);
            }
          });
        }
        if (mn === Infinity) {
          mn = 0;
          mx = 1;
        }
        if (lo === undefined || lo === null) lo = Math.min(0, mn);
        if (hi === undefined || hi === null) hi = mx > lo ? lo + niceStep((mx - lo) / 4) * 4 : lo + 1;
      }
      return { lo, hi };
    }
  }

  const VIEW_BY_CHART = {
    line: (d, r) => new TimeSeriesView(d, r, false),
    area: (d, r) => new TimeSeriesView(d, r, true),
    stat: (d, r) => new StatView(d, r),
    gauge: (d, r) => new GaugeView(d, r),
    table: (d, r) => new TableView(d, r),
    heatmap: (d, r) => new HeatmapView(d, r),
  };

  // ------------------------------------------------------------------ layout

  /** A widget definition without its grid position (a move or resize keeps the view). */
  function defSansPosition(def) {
    const copy = JSON.parse(JSON.stringify(def));
    const display = copy.display_config || copy.display;
    if (display) delete display.position;
    return JSON.stringify(copy);
  }

  function layout(dash) {
    const grid = $('#grid');
    const keep = new Map();
    const focusBefore = editFocusKey();
    for (const [id, view] of state.views) {
      const def = (dash.widgets || []).find((w) => w.widget_id === id);
      if (def && defSansPosition(def) === defSansPosition(view.def)) {
        view.def = def;
        view.display = def.display_config || def.display || {};
        const pos = view.display.position;
        view.root.style.gridColumn = `${pos.x + 1} / span ${pos.w}`;
        view.root.style.gridRow = `${pos.y + 1} / span ${pos.h}`;
        keep.set(id, view);
      }
    }
    let created = 0;
    const order = [];
    grid.style.setProperty('--columns', String(dash.columns || 12));
    const tpl = $('#widget-template');
    const views = new Map();
    const widgets = (dash.widgets || []).slice().sort((a, b) => {
      const pa = (a.display_config || a.display).position;
      const pb = (b.display_config || b.display).position;
      return pa.y - pb.y || pa.x - pb.x;
    });
    for (const def of widgets) {
      let view = keep.get(def.widget_id);
      if (!view) {
        const root = tpl.content.firstElementChild.cloneNode(true);
        const display = def.display_config || def.display;
        root.dataset.widgetId = def.widget_id;
        root.dataset.chart = display.chart;
        root.dataset.stale = 'true';
        const title = $('.widget-title', root);
        title.textContent = def.title;
        title.title = def.title;
        title.id = `title-${def.widget_id}`;
        root.setAttribute('aria-labelledby', title.id);
        const expand = $('.expand', root);
        expand.title = `Show ${def.title} full screen (Escape closes)`;
        $('.visually-hidden', expand).textContent = `Full screen: ${def.title}`;
        expand.addEventListener('click', () => setFullscreen(root.classList.contains('fullscreen') ? null : root));
        const pos = display.position;
        root.style.gridColumn = `${pos.x + 1} / span ${pos.w}`;
        root.style.gridRow = `${pos.y + 1} / span ${pos.h}`;
        const make = VIEW_BY_CHART[display.chart] || VIEW_BY_CHART.stat;
        view = make(def, root);
        addEditBar(view);
        created++;
      }
      order.push(view.root);
      views.set(def.widget_id, view);
      markDirty(view);
    }
    // The widgets in reading order. The DOM is only rebuilt when the order changed,
    // so a widget that keeps its place keeps the keyboard focus too.
    const current = [...grid.children].filter((e) => e.matches('section.widget'));
    if (current.length !== order.length || current.some((e, i) => e !== order[i])) {
      grid.replaceChildren(...order);
    } else {
      for (const e of [...grid.children]) if (!e.matches('section.widget')) e.remove();
    }
    const hadViews = state.views.size > 0 || state.laidOut;
    state.views = views;
    state.laidOut = true;
    layoutExtras(dash, grid);
    $('#dashboard-name').textContent = dash.name;
    document.title = `${dash.name} · rtdash`;
    restoreEditFocus(focusBefore);
    // widgets added by an edit: their recent history, like on open
    if (created && hadViews) loadHistory(dash.id, LIVE_RANGE_MS, 'seam');
  }

  /** Shows one widget over the page (null: none); Escape closes it. */
  let fullscreenEl = null;
  function setFullscreen(root) {
    if (fullscreenEl && fullscreenEl !== root) {
      fullscreenEl.classList.remove('fullscreen');
      $('.expand', fullscreenEl).setAttribute('aria-pressed', 'false');
    }
    fullscreenEl = root;
    if (root) {
      root.classList.add('fullscreen');
      $('.expand', root).setAttribute('aria-pressed', 'true');
      $('.expand', root).focus();
    }
  }
  document.addEventListener('keydown', (e) => {
    // Escape first returns zoomed charts to live, then closes full screen
    const zoomed = [...state.views.values()].filter((v) => v.zoom);
    if (e.key === 'Escape' && zoomed.length) {
      for (const v of zoomed) v.unzoom();
      return;
    }
    if (e.key === 'Escape' && fullscreenEl) {
      const b = $('.expand', fullscreenEl);
      setFullscreen(null);
      b.focus();
    }
  });

  // ------------------------------------------------------------------ HTTP

  async function getJson(path) {
    const res = await fetch(path, {
      headers: { Accept: 'application/json', Authorization: `Bearer ${TOKEN}` },
      cache: 'no-store',
    });
    if (!res.ok) {
      const body = await res.text().catch(() => '');
      const err = new Error(`${path}: HTTP ${res.status}${body ? ` (${body.slice(0, 200)})` : ''}`);
      err.status = res.status;
      throw err;
    }
    return res.json();
  }

  /** The dashboard to show: `?dashboard=ID`, else the first one the server lists. */
  async function resolveDashboardId() {
    const fromUrl = state.wantId;
    if (fromUrl) return fromUrl;
    const list = await getJson('/dashboards');
    const items = Array.isArray(list) ? list : list.dashboards || list.items || [];
    if (!items.length) throw Object.assign(new Error('the server has no dashboards'), { fatal: true });
    const first = items[0];
    return typeof first === 'string' ? first : first.id;
  }

  async function loadDashboard() {
    const gen = state.gen;
    const id = state.dashboard ? state.dashboard.id : await resolveDashboardId();
    let doc;
    try {
      doc = await getJson(`/dashboards/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err.status === 404) err.gone = id;
      throw err;
    }
    if (gen !== state.gen) throw Object.assign(new Error('another dashboard is shown'), { superseded: true });
    const dash = doc.dashboard || doc;
    state.wantId = dash.id;
    const json = JSON.stringify(dash);
    if (json !== state.dashboardJson) {
      state.dashboardJson = json;
      state.dashboard = dash;
      layout(dash);
    }
    loadAlertHistory(dash.id);
    refreshHistoryPanel();
    return dash;
  }

  /** Recent alert events, if the server offers them. */
  async function loadAlertHistory(id) {
    try {
      const doc = await getJson(`/dashboards/${encodeURIComponent(id)}/alerts`);
      const list = Array.isArray(doc) ? doc : doc.alerts || doc.history || doc.events || [];
      for (const a of list.slice().reverse()) onAlert(a, true);
      const firing = Array.isArray(doc.firing) ? doc.firing : [];
      for (const a of firing) onAlert(Object.assign({ state: 'firing' }, a), true);
    } catch (err) {
      // optional endpoint
    }
  }

  // ------------------------------------------------------------------ history

  /** Fetches every widget's history over `rangeMs` (one request) and applies it:
   *  `seam` (on open and reconnect) or `extend` (a longer range, in front). Failures
   *  leave the charts as they are: the live values go on. */
  async function loadHistory(id, rangeMs, mode) {
    const step = rangeMs === LIVE_RANGE_MS ? `&step=${LIVE_STEP_MS}` : '';
    let doc;
    try {
      doc = await getJson(`/dashboards/${encodeURIComponent(id)}/history?range=${rangeMs}${step}`);
    } catch (err) {
      console.warn('history unavailable', err.message);
      return;
    }
    for (const h of doc.widgets || []) {
      const view = state.views.get(h.widget_id);
      if (!view) continue;
      view.applyHistory(h, mode);
      markDirty(view);
    }
    state.historyLoads++;
  }

  /** The last 5 min (seamed to the live values), then the chosen longer range in front. */
  async function loadAllHistory(id) {
    await loadHistory(id, LIVE_RANGE_MS, 'seam');
    if (state.range > LIVE_RANGE_MS) await loadHistory(id, state.range, 'extend');
  }

  function setRange(key) {
    const ms = RANGES[key];
    if (!ms || ms === state.range) return;
    state.range = ms;
    for (const b of document.querySelectorAll('#range button')) {
      b.setAttribute('aria-pressed', String(b.dataset.range === key));
    }
    for (const v of state.views.values()) markDirty(v);
    if (ms > LIVE_RANGE_MS && state.dashboard) loadHistory(state.dashboard.id, ms, 'extend');
  }

  for (const b of document.querySelectorAll('#range button')) {
    b.addEventListener('click', () => setRange(b.dataset.range));
  }

  window.__rtdash = {
    points: (id) => {
      const v = state.views.get(id);
      return v ? v.pointCount() : 0;
    },
    span: (id) => {
      const v = state.views.get(id);
      return v && v.span ? v.span : 0;
    },
    // the runs drawn per series: {group: [[fromMs, toMs], ...]} (a break between runs is a gap)
    segments: (id) => {
      const v = state.views.get(id);
      return v && v.segments ? v.segments : {};
    },
    outages: () => state.outages.map(([a, b]) => [a, b]),
    // [fired, resolved] spans drawn shaded on the widget's chart (resolved: null while firing)
    alertSpans: (id) => alertSpans(id).map(([a, b]) => [a, Number.isFinite(b) ? b : null]),
    // the y axis drawn: {lo, hi}
    yRange: (id) => {
      const v = state.views.get(id);
      return v && v.geom ? { lo: v.geom.lo, hi: v.geom.hi } : null;
    },
    // the groups hidden with the legend
    hidden: (id) => {
      const v = state.views.get(id);
      return v && v.hidden ? [...v.hidden] : [];
    },
    // the frozen [left, right] of a zoomed chart, or null when it is live
    zoom: (id) => {
      const v = state.views.get(id);
      return v && v.zoom ? v.zoom.slice() : null;
    },
    range: () => state.range,
    historyLoads: () => state.historyLoads,
    // the values of the threshold lines drawn across the widget's chart (display bands and alert rules)
    thresholds: (id) => {
      const v = state.views.get(id);
      return v ? thresholdLines(v).map((t) => t.value) : [];
    },
  };

  // ------------------------------------------------------------------ connection

  function setStatus(status) {
    if (state.status === status) return;
    state.status = status;
    const s = $('#status');
    s.dataset.status = status;
    $('.status-label', s).textContent = status;
    document.body.classList.toggle('disconnected', status !== 'live');
    // every widget's stale marking depends on the connection
    for (const v of state.views.values()) markDirty(v);
    markChrome();
  }

  function streamUrl(id) {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/stream/${encodeURIComponent(id)}`;
  }

  async function connect() {
    state.retryTimer = 0;
    state.retryAt = 0;
    if (state.gone) return;
    setStatus(state.everLive ? 'reconnecting' : 'connecting');
    const gen = state.gen;
    let dash;
    try {
      dash = await loadDashboard();
    } catch (err) {
      if (gen !== state.gen) return;
      state.closeNote = err instanceof TypeError ? 'server unreachable' : err.message;
      if (err.gone) return dashboardGone(err.gone);
      if (err.fatal) return fatal(err.message);
      if (err.status === 403 && state.wantId) {
        // not a passing failure: retrying cannot help
        state.closeNote = 'forbidden';
        return fatal(`The token of this page may not see the dashboard "${state.wantId}" (HTTP 403). Choose another dashboard, or open the page with a token that may see it (?token=…).`);
      }
      return scheduleReconnect();
    }
    if (gen !== state.gen) return;
    refreshDashboardList();
    // History in parallel with the stream: the seam keeps whatever arrives first.
    loadAllHistory(dash.id);
    const url = streamUrl(dash.id);
    $('#fact-url').textContent = url.replace(/^wss?:\/\//, '');
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      state.closeNote = err.message;
      return scheduleReconnect();
    }
    state.ws = ws;
    ws.onopen = () => {
      state.lastMsgAt = Date.now();
      ws.send(JSON.stringify({ type: 'hello', token: TOKEN }));
    };
    ws.onmessage = (ev) => {
      if (state.ws !== ws) return;
      state.lastMsgAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (err) {
        console.warn('ignoring a frame that is not JSON', err);
        return;
      }
      onFrame(frame, ws, dash);
    };
    ws.onclose = (ev) => {
      if (state.ws !== ws) return;
      state.ws = null;
      onLost(ev.code, ev.reason);
    };
    ws.onerror = () => {
      // onclose follows and does the work
    };
  }

  function onLost(code, reason) {
    if (isLive()) {
      state.lostAt = Date.now();
      state.outages.push([serverNow(), Infinity]);
    }
    if (state.liveSince && Date.now() - state.liveSince >= LIVE_RESET_MS) state.attempt = 0;
    state.liveSince = 0;
    const known = {
      1001: 'server going away',
      1006: 'connection lost',
      1008: 'message rate exceeded',
      1013: 'server busy',
      4000: 'bad request',
      4001: 'authentication failed',
      4002: 'timed out',
      4003: 'forbidden',
      4004: 'no such dashboard',
      4008: 'too slow: evicted',
      4009: 'token expired',
    };
    state.closeNote = reason || known[code] || `closed with code ${code}`;
    if (code === 4001 || code === 4003 || code === 4009) {
      state.closeNote += params.get('token') ? '; check the token in the URL' : '; add ?token=... to the URL';
    }
    if (state.everLive) setStatus('reconnecting');
    scheduleReconnect();
  }

  /** Exponential backoff with equal jitter: half fixed, half random. */
  function scheduleReconnect() {
    if (state.retryTimer) return;
    if (state.everLive) setStatus('reconnecting');
    const exp = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** state.attempt);
    const delay = exp / 2 + Math.random() * (exp / 2);
    state.attempt++;
    state.retryAt = Date.now() + delay;
    state.retryTimer = setTimeout(connect, delay);
    markChrome();
  }

  function retryNow() {
    if (!state.retryTimer) return;
    clearTimeout(state.retryTimer);
    state.retryTimer = 0;
    connect();
  }

  function onFrame(frame, ws, dash) {
    switch (frame.type) {
      case 'welcome':
        if (num(frame.server_time) !== null) state.clockOffset = frame.server_time - Date.now();
        state.heartbeatMs = frame.heartbeat_ms;
        break;
      case 'snapshot':
        onSnapshot(frame);
        break;
      case 'update':
        applyUpdate(frame, false);
        break;
      case 'alert':
      case 'alerts':
        for (const a of frame.alerts || frame.events || [frame]) onAlert(a, false);
        scheduleHistoryRefresh();
        break;
      case 'pong':
        if (num(frame.t) !== null) state.rtt = Date.now() - frame.t;
        if (num(frame.server_time) !== null && state.rtt !== null) {
          state.clockOffset = frame.server_time + state.rtt / 2 - Date.now();
        }
        markChrome();
        break;
      case 'dashboard':
        // The dashboard was edited (or deleted): fetch it again and lay it out anew.
        // Subscribing again asks for a fresh snapshot, which fills in new widgets.
        if (frame.event === 'deleted') {
          dashboardGone(dash.id);
          break;
        }
        loadDashboard()
          .then(() => {
            if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'subscribe', topics: [dash.id] }));
            onDashboardChanged();
          })
          .catch((err) => {
            if (err.status === 404) dashboardGone(dash.id);
          });
        break;
      case 'error':
        console.warn('server error frame', frame);
        state.closeNote = `server: ${frame.code}${frame.message ? ` (${frame.message})` : ''}`;
        markChrome();
        break;
      default:
        break;
    }
    if (frame.type === 'snapshot' && frame.topic === dash.id) {
      state.liveSince = Date.now();
      if (state.everLive && !isLive()) state.reconnects++;
      state.everLive = true;
      state.closeNote = '';
      const open = state.outages[state.outages.length - 1];
      if (open && open[1] === Infinity) open[1] = serverNow();
      setStatus('live');
    }
  }

  function onSnapshot(frame) {
    // Everything not in the snapshot dates from before it: mark it stale.
    for (const v of state.views.values()) {
      v.missing = true;
      markDirty(v);
    }
    for (const f of frame.frames || []) {
      if (f.type === 'update') applyUpdate(f, true);
      else if (f.type === 'alert' || f.type === 'alerts') for (const a of f.alerts || f.events || [f]) onAlert(a, true);
    }
    if (num(frame.seq) !== null) state.seq = frame.seq;
    markChrome();
  }

  /** The values an update item carries, one per group. */
  function* pointsOf(item, fallbackT) {
    const widget = item.widget ?? item.widget_id;
    const t = num(item.window_end) ?? fallbackT;
    const event = num(item.event_time);
    const stale = item.stale === true;
    const groups = item.groups ?? (item.value !== null && typeof item.value === 'object' ? item.value : null);
    if (groups && typeof groups === 'object') {
      const entries = Array.isArray(groups)
        ? groups.map((g) => [g.group ?? g.key ?? g.name ?? '', g])
        : Object.entries(groups);
      for (const [g, v] of entries) {
        const obj = v !== null && typeof v === 'object';
        yield {
          widget,
          group: String(g),
          value: num(obj ? v.value : v),
          t,
          event: obj ? num(v.event_time) ?? event : event,
          stale: stale || (obj && v.stale === true),
        };
      }
    } else {
      yield { widget, group: item.group == null ? '' : String(item.group), value: num(item.value), t, event, stale };
    }
  }

  function applyUpdate(frame, fromSnapshot) {
    const now = Date.now();
    const fallbackT = num(frame.sent_at) ?? serverNow();
    for (const item of frame.items || []) {
      const view = state.views.get(item.widget ?? item.widget_id);
      if (!view) continue;
      // A grouped widget's item lists all its current groups: forget the others.
      if (Array.isArray(item.groups)) {
        const keep = new Set(item.groups.map((g) => String(g.group ?? g.key ?? g.name ?? '')));
        for (const g of [...view.latest.keys()]) if (!keep.has(g)) view.latest.delete(g);
      }
      markDirty(view);
      for (const p of pointsOf(item, fallbackT)) {
        view.apply(p);
        if (!fromSnapshot && p.event) {
          state.latencies.push(now + state.clockOffset - p.event);
          if (state.latencies.length > 200) state.latencies.shift();
        }
      }
    }
    if (!fromSnapshot) {
      state.updates++;
      if (num(frame.seq) !== null) state.seq = frame.seq;
    }
    state.lastUpdateAt = now;
    markChrome();
  }

  // ------------------------------------------------------------------ alerts

  function alertKey(a) {
    const rule = a.rule_id ?? a.alert_id ?? a.rule ?? a.id ?? `${a.widget ?? a.widget_id}:${a.message}`;
    return a.group ? `${rule}/${a.group}` : String(rule);
  }

  /** Normalises an alert event: firing or resolved, for a widget, with a message. */
  function onAlert(raw) {
    const a = {
      key: alertKey(raw),
      widget: raw.widget ?? raw.widget_id ?? null,
      state: String(raw.state ?? raw.status ?? (raw.resolved ? 'resolved' : 'firing')).toLowerCase(),
      value: num(raw.value),
      group: raw.group ?? null,
      condition: raw.condition ?? null,
      threshold: num(raw.threshold),
      at: num(raw.at) ?? num(raw.time) ?? num(raw.fired_at) ?? num(raw.resolved_at) ?? num(raw.event_time) ?? serverNow(),
      message: raw.message ?? raw.summary ?? raw.name ?? raw.rule_name ?? raw.rule ?? 'alert',
    };
    // A firing event older than a resolve already seen (a late answer of
    // GET /alerts, a cached frame) does not bring the alert back.
    const resolvedAt = state.resolvedAt.get(a.key);
    if (a.state === 'firing') {
      if (resolvedAt === undefined || resolvedAt < a.at) state.alertsFiring.set(a.key, a);
    } else {
      state.alertsFiring.delete(a.key);
      state.resolvedAt.set(a.key, Math.max(a.at, resolvedAt ?? -Infinity));
    }
    const dup = state.alertHistory.find((h) => h.key === a.key && h.state === a.state && h.at === a.at);
    if (!dup) {
      state.alertHistory.unshift(a);
      state.alertHistory.sort((x, y) => y.at - x.at);
      if (state.alertHistory.length > ALERT_HISTORY) state.alertHistory.length = ALERT_HISTORY;
    }
    const view = a.widget && state.views.get(a.widget);
    if (view) markDirty(view);
    markChrome();
  }

  /** "Error rate high [eu-west]: 7.23% (above 5%)", from the event's fields where present. */
  function alertText(a) {
    const view = a.widget && state.views.get(a.widget);
    const unit = view ? view.unit : '';
    const msg = String(a.message);
    if (a.condition && a.threshold !== null) {
      const cut = msg.indexOf(': ');
      let name = cut > 0 ? msg.slice(0, cut) : view ? view.def.title : 'alert';
      if (a.group && !name.includes(`[${a.group}]`)) name += ` [${a.group}]`;
      if (a.state === 'firing') {
        const now = a.value === null ? '' : `${fmt(a.value, unit)} `;
        return `${name}: ${now}(${a.condition} ${fmtPlain(a.threshold, unit)})`;
      }
      const why = /rule (changed|removed)/.exec(msg);
      if (why) return `${name}: resolved (${why[0]})`;
      const back = a.condition === 'above' ? 'below' : a.condition === 'below' ? 'above' : 'within';
      return `${name}: back ${back} ${fmtPlain(a.threshold, unit)}`;
    }
    const title = view ? view.def.title : '';
    const text = title && !msg.includes(title) ? `${title}: ${msg}` : msg;
    return a.value === null ? text : `${text} (${fmt(a.value, unit)})`;
  }

  // ------------------------------------------------------------------ chrome

  /** Sets an element's text only when it changed (no needless style or layout work). */
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }
  const chromeKeys = {};
  /** True when `key` differs from the last one seen for `slot` (then it is rebuilt). */
  function changed(slot, key) {
    if (chromeKeys[slot] === key) return false;
    chromeKeys[slot] = key;
    return true;
  }

  function renderChrome() {
    // connection banner
    const banner = $('#conn-banner');
    if (state.gone) {
      banner.hidden = true;
      chromeKeys.conn = '';
    } else if (isLive() || !state.everLive) {
      banner.hidden = isLive() || !state.closeNote;
      if (!banner.hidden) setText(banner, `Not connected: ${state.closeNote}.${state.retryTimer ? ' Retrying…' : ''}`);
      chromeKeys.conn = '';
    } else {
      banner.hidden = false;
      const secs = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
      const when = state.retryTimer ? `retrying in ${secs} s` : 'connecting…';
      if (changed('conn', `${state.lostAt}|${state.closeNote}|${when}|${!!state.retryTimer}`)) {
      banner.replaceChildren(
        el('strong', null, 'Connection lost'),
        el('span', null, `${state.lostAt ? `at ${fmtTime(state.lostAt)} ` : ''}(${state.closeNote || 'no connection'}). Values are stale until the stream is back; ${when}.`),
      );
      if (state.retryTimer) {
        const b = el('button', 'retry', 'Retry now');
        b.style.cssText = 'margin-left:auto;background:none;border:1px solid currentColor;color:inherit;border-radius:6px;padding:2px 10px;cursor:pointer';
        b.onclick = retryNow;
        banner.appendChild(b);
      }
      }
    }

    // alert banner and list
    const firing = [...state.alertsFiring.values()];
    const ab = $('#alert-banner');
    ab.hidden = firing.length === 0;
    if (!firing.length) chromeKeys.banner = '';
    if (firing.length && changed('banner', firing.map((a) => `${a.key}@${a.at}:${alertText(a)}`).join('|') + fmtDuration(serverNow() - firing[0].at))) {
      const parts = [el('span', 'pill firing', `${firing.length} firing`)];
      firing.slice(0, 3).forEach((a, i) => {
        if (i) parts.push(el('span', null, '·'));
        parts.push(el('strong', null, alertText(a)));
        parts.push(el('span', null, `since ${fmtTime(a.at)} (${fmtDuration(serverNow() - a.at)})`));
      });
      if (firing.length > 3) parts.push(el('span', null, `and ${firing.length - 3} more`));
      ab.replaceChildren(...parts);
    }
    const count = $('#alert-count');
    setText(count, `${firing.length} firing`);
    count.classList.toggle('hot', firing.length > 0);
    const list = $('#alert-list');
    const listKey = state.alertHistory.map((a) => `${a.key}@${a.at}:${a.state}:${state.alertsFiring.get(a.key) === a ? fmtDuration(serverNow() - a.at) : ''}`).join('|');
    if (!changed('list', listKey)) {
      // unchanged
    } else if (!state.alertHistory.length) {
      list.replaceChildren(el('li', 'empty', 'No alerts yet'));
    } else {
      list.replaceChildren(...state.alertHistory.map((a) => {
        const li = el('li', a.state === 'firing' && state.alertsFiring.get(a.key) === a ? 'firing' : '');
        let when = fmtTimeFull(a.at);
        if (a.state === 'firing' && state.alertsFiring.get(a.key) === a) when += ` · firing for ${fmtDuration(serverNow() - a.at)}`;
        else if (a.state !== 'firing') {
          const fired = state.alertHistory.find((f) => f.key === a.key && f.state === 'firing' && f.at <= a.at);
          if (fired) when += ` · after ${fmtDuration(a.at - fired.at)}`;
        }
        const time = el('time', 'when', when);
        time.dateTime = new Date(a.at).toISOString();
        li.append(el('span', `pill ${a.state === 'firing' ? 'firing' : 'resolved'}`, a.state), el('span', 'msg', alertText(a)), time);
        return li;
      }));
    }
    // the tab title counts the firing alerts
    if (state.dashboard) {
      const title = `${firing.length ? `(${firing.length}) ` : ''}${state.dashboard.name} · rtdash`;
      if (document.title !== title) document.title = title;
    }

    // facts
    setText($('#fact-updates'), NF_INT.format(state.updates));
    setText($('#fact-seq'), state.seq === null ? '—' : String(state.seq));
    setText($('#fact-reconnects'), String(state.reconnects));
    setText($('#fact-rtt'), state.rtt === null ? '—' : `${Math.round(state.rtt)} ms`);
    setText($('#fact-last'), state.lastMsgAt ? fmtAgo(Date.now() - state.lastMsgAt) : '—');
    const lat = state.latencies.slice().sort((x, y) => x - y);
    setText($('#latency'), lat.length
      ? `event → screen p50 ${NF_INT.format(Math.round(Math.max(0, lat[lat.length >> 1])))} ms`
      : 'event → screen —');
  }

  function fatal(message) {
    setStatus('reconnecting');
    const grid = $('#grid');
    grid.replaceChildren(el('div', 'fatal', message));
  }

  // once a second: clock, countdowns, keep-alive ping and the silence watchdog
  function tick() {
    setText($('#clock'), fmtTime(Date.now()));
    const ws = state.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      if (Date.now() - state.lastPingAt >= PING_EVERY_MS) {
        state.lastPingAt = Date.now();
        ws.send(JSON.stringify({ type: 'ping', t: Date.now() }));
      }
      const limit = Math.max(SILENCE_LIMIT_MS, 3 * (state.heartbeatMs || 0));
      if (Date.now() - state.lastMsgAt > limit) {
        state.ws = null;
        ws.close(4002, 'client: no frame from the server');
        onLost(1006, 'no frame from the server');
      }
    }
    markChrome();
  }

  // ------------------------------------------------------------------ editor
  //
  // The dashboard list (switch, create, rename, delete), edit mode (per-widget
  // buttons: edit, alerts, move, resize, remove; "Add widget"), the widget and
  // alert-rule dialogs, the alert history panel and the writer token. Every
  // change goes through the HTTP API; the server then sends a `dashboard` frame
  // to every viewer, whose page fetches the dashboard again and lays it out anew.

  const WRITER_KEY = 'rtdash.writerToken';
  const AGGREGATIONS = ['count', 'sum', 'avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99', 'p99.9'];
  const SILENCE_FOR = [['15 min', 15 * 60 * 1000], ['1 h', 60 * 60 * 1000], ['4 h', 4 * 60 * 60 * 1000]];
  const HISTORY_PAGE = 20;
  const ed = {
    editing: false,
    dashboards: [], // [{id, name}]
    catalog: null, // {metrics: [...], truncated}
    catalogAt: 0,
    writes: 0,
    lastError: null,
    pendingFocus: null, // {widget, action}: focus to restore after the next layout
    widgetForm: null, // {mode: 'add'|'edit', def}
    rulesWidget: null, // widget id of the open rules dialog
    editingRule: null, // rule id being edited, or null for a new one
    history: { records: [], next: null, status: 'idle', error: null, timer: 0, loads: 0 },
  };

  function announceEdit(text) {
    const s = $('#edit-status');
    s.textContent = '';
    // a fresh text is announced even when it repeats
    setTimeout(() => { s.textContent = text; }, 30);
  }

  const currentId = () => (state.dashboard ? state.dashboard.id : state.wantId);

  function readWriterToken() {
    try {
      return sessionStorage.getItem(WRITER_KEY);
    } catch (err) {
      return null;
    }
  }

  function storeWriterToken(t) {
    try {
      if (t) sessionStorage.setItem(WRITER_KEY, t);
      else sessionStorage.removeItem(WRITER_KEY);
    } catch (err) {
      // storage unavailable: the token lasts until the page closes
    }
    ed.memToken = t;
  }

  /** An API error: `status`, `code`, `message`, `violations` ([{path, message}]). */
  function apiError(status, body, text) {
    const e = body && typeof body === 'object' ? body : {};
    const inner = e.error && typeof e.error === 'object' ? e.error : e;
    const code = typeof e.error === 'string' ? e.error : inner.code || `http_${status}`;
    const message = inner.message || e.message || (text ? text.slice(0, 300) : `HTTP ${status}`);
    const err = new Error(message);
    err.status = status;
    err.code = code;
    err.violations = Array.isArray(inner.violations) ? inner.violations : Array.isArray(e.violations) ? e.violations : [];
    if (inner.field && !err.violations.length) err.violations = [{ path: inner.field, message }];
    return err;
  }

  /** A change through the API. With a 401 or 403 it asks for a writer token (kept in
   *  sessionStorage, sent as `Authorization: Bearer`) and tries again. */
  async function write(method, path, body) {
    let asked = 0;
    for (;;) {
      const token = readWriterToken() || ed.memToken || TOKEN;
      const headers = { Accept: 'application/json', Authorization: `Bearer ${token}` };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
      const text = await res.text().catch(() => '');
      let json = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch (err) {
        json = null;
      }
      if ((res.status === 401 || res.status === 403) && asked < 3) {
        asked++;
        const why = apiError(res.status, json, text).message;
        const t = await askWriterToken(res.status === 401
          ? `This change needs a writer's token (the server answered 401: ${why}).`
          : `The token sent may not make this change (403: ${why}).`);
        if (!t) throw Object.assign(apiError(res.status, json, text), { message: 'A writer token is needed to change dashboards.' });
        storeWriterToken(t);
        continue;
      }
      if (!res.ok) {
        const err = apiError(res.status, json, text);
        ed.lastError = { status: err.status, code: err.code, message: err.message, violations: err.violations };
        throw err;
      }
      ed.writes++;
      return json;
    }
  }

  /** Asks for a writer token in a dialog; resolves with it, or null when cancelled. */
  function askWriterToken(why) {
    const dlg = $('#token-dialog');
    $('#token-why').textContent = why;
    const input = $('#token-input');
    input.value = '';
    return new Promise((resolve) => {
      const form = $('#token-form');
      const done = (v) => {
        form.onsubmit = null;
        $('#token-cancel').onclick = null;
        dlg.oncancel = null;
        if (dlg.open) dlg.close();
        resolve(v);
      };
      form.onsubmit = (e) => {
        e.preventDefault();
        const v = input.value.trim();
        if (v) done(v);
        else input.focus();
      };
      $('#token-cancel').onclick = () => done(null);
      dlg.oncancel = (e) => {
        e.preventDefault();
        done(null);
      };
      dlg.showModal();
      input.focus();
    });
  }

  // ---------------------------------------------------------------- form errors

  /** Clears the field errors and the message of a form. */
  function clearErrors(root) {
    for (const e of root.querySelectorAll('.field-error')) {
      e.hidden = true;
      e.textContent = '';
    }
    for (const c of root.querySelectorAll('[aria-invalid]')) {
      c.removeAttribute('aria-invalid');
      const d = (c.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && !x.endsWith('-error'));
      if (d.length) c.setAttribute('aria-describedby', d.join(' '));
      else c.removeAttribute('aria-describedby');
    }
    for (const m of root.querySelectorAll('.form-msg')) m.textContent = '';
  }

  /** Shows `message` next to the control `controlId` (its `-error` paragraph). */
  function fieldError(controlId, message, errId) {
    const c = document.getElementById(controlId);
    const p = document.getElementById(errId || `${controlId}-error`);
    if (!c || !p) return false;
    p.textContent = p.hidden ? message : `${p.textContent} ${message}`;
    p.hidden = false;
    c.setAttribute('aria-invalid', 'true');
    const d = new Set((c.getAttribute('aria-describedby') || '').split(' ').filter(Boolean));
    d.add(p.id);
    c.setAttribute('aria-describedby', [...d].join(' '));
    return true;
  }

  /** The error paragraph of a control, where it is not `<id>-error`. */
  function id0(id) {
    if (id === 'wf-metric-other') return 'wf-metric-error';
    if (id && /^wf-f[kv]-/.test(id)) return 'wf-filters-error';
    return undefined;
  }

  /** `fieldError`, for a check that failed: always false (the form is not valid). */
  function invalid(controlId, message, errId) {
    fieldError(controlId, message, errId);
    return false;
  }

  /** Puts each violation next to the field it names (`map(path)` gives the control id),
   *  the others in the form's message; focuses the first field at fault. */
  function showViolations(err, map, msgEl) {
    const rest = [];
    let first = null;
    for (const v of err.violations || []) {
      const m = map(String(v.path || ''));
      const [id, errId] = Array.isArray(m) ? m : [m, id0(m)];
      if (id && fieldError(id, v.message || 'invalid', errId)) {
        if (!first) first = id;
      } else rest.push(v.path ? `${v.path}: ${v.message}` : v.message);
    }
    if (!first || rest.length) msgEl.textContent = rest.length ? rest.join('; ') : err.message;
    if (first) document.getElementById(first).focus();
  }

  // ---------------------------------------------------------------- dashboards

  async function refreshDashboardList() {
    try {
      const list = await getJson('/dashboards');
      const items = Array.isArray(list) ? list : list.dashboards || list.items || [];
      ed.dashboards = items.map((d) => (typeof d === 'string' ? { id: d, name: d } : { id: d.id, name: d.name || d.id }));
    } catch (err) {
      // keep what is shown
    }
    renderDashboardSelect();
  }

  function renderDashboardSelect() {
    const sel = $('#dashboard-select');
    const cur = currentId();
    const list = ed.dashboards.slice();
    if (cur && !list.some((d) => d.id === cur) && state.dashboard) list.unshift({ id: cur, name: state.dashboard.name });
    const key = JSON.stringify([list, cur]);
    if (sel.dataset.key === key) return;
    sel.dataset.key = key;
    sel.replaceChildren(...list.map((d) => {
      const o = el('option', null, d.name === d.id ? d.id : `${d.name} (${d.id})`);
      o.value = d.id;
      return o;
    }));
    if (state.gone === cur || !list.some((d) => d.id === cur)) {
      const o = el('option', null, state.gone ? `${cur} (deleted)` : 'choose a dashboard');
      o.value = '';
      sel.prepend(o);
      sel.value = '';
    } else sel.value = cur;
  }

  /** Shows dashboard `id` instead of the current one (`?dashboard=ID` in the URL). */
  function switchDashboard(id) {
    if (!id) return;
    state.gen++;
    const ws = state.ws;
    state.ws = null;
    if (ws) ws.close(1000, 'another dashboard');
    if (state.retryTimer) clearTimeout(state.retryTimer);
    state.retryTimer = 0;
    state.retryAt = 0;
    state.attempt = 0;
    state.wantId = id;
    state.gone = null;
    state.dashboard = null;
    state.dashboardJson = '';
    state.views = new Map();
    state.laidOut = false;
    state.alertsFiring.clear();
    state.resolvedAt.clear();
    state.alertHistory = [];
    state.outages = [];
    state.seq = null;
    state.everLive = false;
    state.liveSince = 0;
    state.closeNote = '';
    setFullscreen(null);
    $('#grid').replaceChildren();
    ed.history.records = [];
    ed.history.next = null;
    renderHistory();
    const url = new URL(location.href);
    url.searchParams.set('dashboard', id);
    history.replaceState(null, '', url.pathname + url.search + url.hash);
    renderDashboardSelect();
    markChrome();
    connect();
  }

  /** The dashboard shown was deleted: a clear message instead of its widgets. */
  function dashboardGone(id) {
    if (currentId() !== id) return;
    state.gone = id;
    const ws = state.ws;
    state.ws = null;
    if (ws) ws.close(1000, 'dashboard deleted');
    if (state.retryTimer) clearTimeout(state.retryTimer);
    state.retryTimer = 0;
    state.views = new Map();
    state.dashboard = null;
    state.dashboardJson = '';
    state.alertsFiring.clear();
    setStatus('closed');
    state.closeNote = 'the dashboard was deleted';
    const msg = el('div', 'fatal gone');
    msg.setAttribute('role', 'alert');
    msg.dataset.gone = id;
    msg.append(el('strong', null, `The dashboard "${id}" was deleted.`), el('span', null, ' Choose another one in the dashboard list, or create one with “Dashboards…”.'));
    $('#grid').replaceChildren(msg);
    setText($('#dashboard-name'), `${id} (deleted)`);
    document.title = `${id} (deleted) · rtdash`;
    refreshDashboardList();
    markChrome();
  }

  $('#dashboard-select').addEventListener('change', (e) => switchDashboard(e.target.value));
  $('#dashboard-select').addEventListener('focus', () => refreshDashboardList());

  function openDashDialog() {
    const dlg = $('#dash-dialog');
    clearErrors(dlg);
    $('#rename-name').value = state.dashboard ? state.dashboard.name : '';
    $('#rename-form').hidden = !state.dashboard;
    $('#create-id').value = '';
    $('#create-name').value = '';
    $('#delete-confirm').hidden = true;
    $('#delete-start-row').hidden = !state.dashboard;
    $('#delete-dashboard').closest('.dialog-section').hidden = !state.dashboard;
    dlg.showModal();
    (state.dashboard ? $('#rename-name') : $('#create-id')).focus();
  }
  $('#manage-dashboards').addEventListener('click', openDashDialog);

  $('#rename-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const dlg = $('#dash-dialog');
    clearErrors(dlg);
    const name = $('#rename-name').value.trim();
    if (!name) return fieldError('rename-name', 'Enter a name.');
    const id = currentId();
    try {
      // the whole document with the new name (widgets and alert rules as stored now)
      const doc = await getJson(`/dashboards/${encodeURIComponent(id)}`);
      const dash = Object.assign({}, doc.dashboard || doc, { name });
      const saved = await write('PUT', `/dashboards/${encodeURIComponent(id)}`, dash);
      applyDoc(saved);
      $('#dash-msg').textContent = `Renamed to “${name}”.`;
      announceEdit(`Dashboard renamed to ${name}`);
      refreshDashboardList();
    } catch (err) {
      showViolations(err, (p) => (p === 'name' ? 'rename-name' : null), $('#dash-msg'));
    }
  });

  $('#create-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const dlg = $('#dash-dialog');
    clearErrors(dlg);
    const id = $('#create-id').value.trim();
    const name = $('#create-name').value.trim();
    let bad = false;
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(id)) bad = fieldError('create-id', 'Use 1 to 128 letters, digits, “_”, “.” or “-”.');
    if (!name) bad = fieldError('create-name', 'Enter a name.') || bad;
    if (bad) return dlg.querySelector('[aria-invalid="true"]').focus();
    try {
      await write('POST', '/dashboards', { id, name, columns: 12, widgets: [] });
      dlg.close();
      announceEdit(`Dashboard ${name} created`);
      switchDashboard(id);
      refreshDashboardList();
    } catch (err) {
      if (err.code === 'dashboard_exists') return fieldError('create-id', err.message) && $('#create-id').focus();
      showViolations(err, (p) => (p === 'id' ? 'create-id' : p === 'name' ? 'create-name' : null), $('#dash-msg'));
    }
  });

  $('#delete-dashboard').addEventListener('click', () => {
    const name = state.dashboard ? state.dashboard.name : currentId();
    $('#delete-confirm-text').textContent = `Delete “${name}” (${currentId()}) with its widgets and alert rules? This cannot be undone.`;
    $('#delete-confirm').hidden = false;
    $('#delete-start-row').hidden = true;
    $('#delete-confirm-no').focus();
  });
  $('#delete-confirm-no').addEventListener('click', () => {
    $('#delete-confirm').hidden = true;
    $('#delete-start-row').hidden = false;
    $('#delete-dashboard').focus();
  });
  $('#delete-confirm-yes').addEventListener('click', async () => {
    const id = currentId();
    try {
      await write('DELETE', `/dashboards/${encodeURIComponent(id)}`);
    } catch (err) {
      $('#dash-msg').textContent = err.message;
      return;
    }
    $('#dash-dialog').close();
    announceEdit(`Dashboard ${id} deleted`);
    await refreshDashboardList();
    const next = ed.dashboards.find((d) => d.id !== id);
    if (next) switchDashboard(next.id);
    else dashboardGone(id);
  });

  for (const dlg of document.querySelectorAll('dialog')) {
    for (const b of dlg.querySelectorAll('[data-close]')) b.addEventListener('click', () => dlg.close());
  }

  /** Lays out a document a write answered (the `dashboard` frame that follows finds it
   *  unchanged). */
  function applyDoc(doc) {
    if (!doc) return;
    const dash = doc.dashboard || doc;
    if (!dash.id || dash.id !== currentId()) return;
    const json = JSON.stringify(dash);
    if (json !== state.dashboardJson) {
      state.dashboardJson = json;
      state.dashboard = dash;
      layout(dash);
      onDashboardChanged();
    }
  }

  /** After the dashboard changed (here or elsewhere): the open dialogs follow it. */
  function onDashboardChanged() {
    if ($('#rules-dialog').open) renderRules();
    if (state.dashboard && $('#widget-dialog').open && ed.widgetForm && ed.widgetForm.mode === 'edit') {
      const still = (state.dashboard.widgets || []).some((w) => w.widget_id === ed.widgetForm.def.widget_id);
      if (!still) $('#wf-msg').textContent = 'This widget was removed meanwhile.';
    }
    renderDashboardSelect();
    markChrome();
  }

  // ---------------------------------------------------------------- edit mode

  function setEditing(on) {
    ed.editing = on;
    document.body.classList.toggle('editing', on);
    $('#edit-toggle').setAttribute('aria-pressed', String(on));
    $('#edit-toggle').textContent = on ? 'Done' : 'Edit';
    announceEdit(on ? 'Edit mode: each widget has buttons to edit, move, resize and remove it' : 'Edit mode off');
  }
  $('#edit-toggle').addEventListener('click', () => setEditing(!ed.editing));

  const EDIT_BUTTONS = [
    ['edit', 'Edit', 'Edit'],
    ['alerts', 'Alerts', 'Alert rules of'],
    ['left', '←', 'Move left:'],
    ['up', '↑', 'Move up:'],
    ['down', '↓', 'Move down:'],
    ['right', '→', 'Move right:'],
    ['narrower', '−W', 'Narrower:'],
    ['wider', '+W', 'Wider:'],
    ['shorter', '−H', 'Shorter:'],
    ['taller', '+H', 'Taller:'],
    ['remove', '✕', 'Remove'],
  ];

  /** The edit buttons of a widget (shown in edit mode only). */
  function addEditBar(view) {
    const bar = el('div', 'edit-bar');
    bar.setAttribute('role', 'group');
    const title = view.def.title;
    bar.setAttribute('aria-label', `Edit ${title}`);
    for (const [action, text, label] of EDIT_BUTTONS) {
      const b = el('button', `eb eb-${action}`, text);
      b.type = 'button';
      b.dataset.action = action;
      const full = `${label} ${title}`;
      b.setAttribute('aria-label', full);
      b.title = action === 'left' || action === 'right' || action === 'up' || action === 'down'
        ? `${full} (one grid cell)`
        : full;
      b.addEventListener('click', () => onEditAction(view.def.widget_id, action));
      bar.appendChild(b);
    }
    view.root.appendChild(bar);
    // `bar-open` keeps the whole bar shown for a button focused again after a move
    view.root.addEventListener('focusout', (e) => {
      if (!view.root.contains(e.relatedTarget)) view.root.classList.remove('bar-open');
    });
  }

  /** The "Add widget" tile (edit mode) and the note of an empty dashboard. */
  function layoutExtras(dash, grid) {
    const widgets = dash.widgets || [];
    let maxY = 0;
    for (const w of widgets) {
      const p = (w.display_config || w.display).position;
      if (p) maxY = Math.max(maxY, p.y + p.h);
    }
    if (!widgets.length) {
      const note = el('div', 'empty-dash', 'This dashboard has no widgets yet. Choose “Edit”, then “Add widget”.');
      note.style.gridRow = '1 / span 2';
      grid.appendChild(note);
    }
    const add = el('button', 'add-tile', '+ Add widget');
    add.type = 'button';
    add.id = 'add-widget';
    add.style.gridColumn = '1 / span 3';
    add.style.gridRow = `${maxY + (widgets.length ? 1 : 3)} / span 2`;
    add.addEventListener('click', () => openWidgetDialog(null));
    grid.appendChild(add);
  }

  function editFocusKey() {
    if (ed.pendingFocus) {
      const f = ed.pendingFocus;
      ed.pendingFocus = null;
      return f;
    }
    const a = document.activeElement;
    if (!a || !a.dataset || !a.dataset.action) return null;
    const w = a.closest('section.widget');
    return w ? { widget: w.dataset.widgetId, action: a.dataset.action } : null;
  }

  function restoreEditFocus(f) {
    if (!f) return;
    const b = document.querySelector(`section.widget[data-widget-id="${CSS.escape(f.widget)}"] .edit-bar [data-action="${f.action}"]`);
    if (b && document.activeElement !== b && !document.querySelector('dialog[open]')) {
      b.closest('section.widget').classList.add('bar-open');
      b.focus();
    }
  }

  const posOf = (w) => Object.assign({}, (w.display_config || w.display).position);
  const overlap = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

  /** Puts widget `id` at `pos`; the widgets it now covers move down until nothing
   *  overlaps. Returns the widgets whose position changed (with it). */
  function placeWidget(widgets, id, pos) {
    const at = new Map(widgets.map((w) => [w.widget_id, posOf(w)]));
    at.set(id, pos);
    const placed = [id];
    const order = widgets.map((w) => w.widget_id).filter((x) => x !== id)
      .sort((a, b) => at.get(a).y - at.get(b).y || at.get(a).x - at.get(b).x);
    for (const x of order) {
      const p = at.get(x);
      let guard = 0;
      while (placed.some((q) => overlap(p, at.get(q))) && guard++ < 1000) p.y++;
      placed.push(x);
    }
    const changed = [];
    for (const w of widgets) {
      const before = posOf(w);
      const now = at.get(w.widget_id);
      if (before.x !== now.x || before.y !== now.y || before.w !== now.w || before.h !== now.h) {
        const copy = JSON.parse(JSON.stringify(w));
        (copy.display_config || copy.display).position = now;
        changed.push(copy);
      }
    }
    return changed;
  }

  async function onEditAction(widgetId, action) {
    const dash = state.dashboard;
    if (!dash) return;
    const def = (dash.widgets || []).find((w) => w.widget_id === widgetId);
    if (!def) return;
    if (action === 'edit') return openWidgetDialog(def);
    if (action === 'alerts') return openRulesDialog(def);
    const id = encodeURIComponent(dash.id);
    if (action === 'remove') {
      try {
        const doc = await write('PATCH', `/dashboards/${id}/widgets`, { remove: [widgetId] });
        announceEdit(`Removed ${def.title}`);
        applyDoc(doc);
        const first = document.querySelector('section.widget .edit-bar [data-action="edit"]') || $('#add-widget');
        if (first) first.focus();
      } catch (err) {
        announceEdit(`Could not remove ${def.title}: ${err.message}`);
      }
      return;
    }
    const columns = dash.columns || 12;
    const p = posOf(def);
    const n = Object.assign({}, p);
    const edge = {
      left: () => (n.x > 0 ? n.x-- : 'the left edge'),
      right: () => (n.x + n.w < columns ? n.x++ : 'the right edge'),
      up: () => (n.y > 0 ? n.y-- : 'the top'),
      down: () => n.y++,
      narrower: () => (n.w > 1 ? n.w-- : 'one column wide'),
      wider: () => (n.x + n.w < columns ? n.w++ : n.x > 0 ? (n.x--, n.w++) : 'as wide as the grid'),
      shorter: () => (n.h > 1 ? n.h-- : 'one row high'),
      taller: () => n.h++,
    }[action]();
    if (typeof edge === 'string') {
      announceEdit(`${def.title} is already at ${edge}`);
      return;
    }
    const changed = placeWidget(dash.widgets, widgetId, n);
    ed.pendingFocus = { widget: widgetId, action };
    try {
      const doc = await write('PATCH', `/dashboards/${id}/widgets`, { update: changed });
      applyDoc(doc);
      restoreEditFocus({ widget: widgetId, action });
      announceEdit(`${def.title}: column ${n.x + 1}, row ${n.y + 1}, ${n.w} wide, ${n.h} high`);
    } catch (err) {
      ed.pendingFocus = null;
      announceEdit(`Could not change ${def.title}: ${err.message}`);
    }
  }

  // ---------------------------------------------------------------- catalog

  async function loadCatalog(force) {
    if (!force && ed.catalog && Date.now() - ed.catalogAt < 10000) return ed.catalog;
    try {
      const doc = await getJson('/catalog');
      ed.catalog = { metrics: Array.isArray(doc.metrics) ? doc.metrics : [], truncated: !!doc.truncated, available: true };
    } catch (err) {
      ed.catalog = { metrics: [], truncated: false, available: false, error: err.message };
    }
    ed.catalogAt = Date.now();
    return ed.catalog;
  }

  /** The catalog entry of `name`, or null. */
  const catalogMetric = (name) => (ed.catalog ? ed.catalog.metrics.find((m) => m.name === name) : null) || null;

  // ---------------------------------------------------------------- widget dialog

  function option(value, text, selected) {
    const o = el('option', null, text === undefined ? value : text);
    o.value = value;
    if (selected) o.selected = true;
    return o;
  }

  function fillMetricSelect(current) {
    const sel = $('#wf-metric');
    const metrics = ed.catalog ? ed.catalog.metrics : [];
    const opts = [];
    if (!metrics.length) opts.push(option('', ed.catalog && !ed.catalog.available ? 'catalog unavailable: type a name' : 'no metric seen yet: type a name'));
    else opts.push(option('', 'choose a metric…'));
    for (const m of metrics) opts.push(option(m.name, `${m.name}${num(m.series) !== null ? ` (${m.series} series)` : ''}`));
    if (current && !metrics.some((m) => m.name === current)) opts.push(option(current, `${current} (not seen now)`));
    if (ed.catalog && ed.catalog.truncated) opts.push(option('', '(list truncated: choose “other” for the rest)'));
    opts.push(option('__other', 'other (type a name)…'));
    sel.replaceChildren(...opts);
    for (const o of sel.options) if (o.textContent.startsWith('(list truncated')) o.disabled = true;
    sel.value = current || '';
    $('#wf-metric-other').hidden = true;
  }

  const metricValue = () => ($('#wf-metric').value === '__other' ? $('#wf-metric-other').value.trim() : $('#wf-metric').value);

  function tagKeys() {
    const m = catalogMetric(metricValue());
    return m && m.tags ? Object.keys(m.tags).sort() : [];
  }
  function tagValues(key) {
    const m = catalogMetric(metricValue());
    return m && m.tags && Array.isArray(m.tags[key]) ? m.tags[key] : [];
  }

  function fillGroupBy(current) {
    const sel = $('#wf-groupby');
    const keys = tagKeys();
    if (current && !keys.includes(current)) keys.push(current);
    sel.replaceChildren(option('', '(none: one value)'), ...keys.map((k) => option(k)));
    sel.value = current || '';
  }

  let filterSeq = 0;
  /** One filter row: a tag key and a value, suggested from the catalog. */
  function addFilterRow(key, value) {
    const i = ++filterSeq;
    const row = el('div', 'filter-row');
    /** A text input of the row with a suggestion list (a datalist's id). */
    const input = (id, cls, label, placeholder, val, list) => {
      const x = el('input');
      x.type = 'text';
      x.id = id;
      x.className = cls;
      x.setAttribute('aria-label', label);
      x.placeholder = placeholder;
      x.value = val || '';
      x.autocomplete = 'off';
      x.setAttribute('list', list);
      return x;
    };
    const k = input(`wf-fk-${i}`, 'fk', 'Tag key', 'tag', key, 'wf-keys');
    const eq = el('span', 'eq', '=');
    eq.setAttribute('aria-hidden', 'true');
    const listId = `wf-vals-${i}`;
    const v = input(`wf-fv-${i}`, 'fv', 'Tag value', 'value', value, listId);
    const dl = el('datalist');
    dl.id = listId;
    const fillValues = () => dl.replaceChildren(...tagValues(k.value.trim()).map((x) => option(x)));
    k.addEventListener('change', fillValues);
    fillValues();
    const rm = el('button', 'btn btn-small', 'Remove');
    rm.type = 'button';
    rm.setAttribute('aria-label', 'Remove this filter');
    rm.addEventListener('click', () => {
      row.remove();
      $('#wf-add-filter').focus();
    });
    row.append(k, eq, v, dl, rm);
    $('#wf-filters').appendChild(row);
    return k;
  }

  function fillKeyList() {
    let dl = document.getElementById('wf-keys');
    if (!dl) {
      dl = el('datalist');
      dl.id = 'wf-keys';
      $('#widget-form').appendChild(dl);
    }
    dl.replaceChildren(...tagKeys().map((x) => option(x)));
  }

  async function openWidgetDialog(def) {
    const dlg = $('#widget-dialog');
    ed.widgetForm = { mode: def ? 'edit' : 'add', def };
    clearErrors(dlg);
    $('#wf-preview').textContent = '';
    $('#widget-dialog-title').textContent = def ? `Edit widget: ${def.title}` : 'Add widget';
    $('#wf-save').textContent = def ? 'Save' : 'Add widget';
    const d = def || {};
    const display = d.display_config || d.display || {};
    $('#wf-title').value = d.title || '';
    $('#wf-agg').value = AGGREGATIONS.includes(d.aggregation) ? d.aggregation : 'avg';
    if (d.aggregation && !AGGREGATIONS.includes(d.aggregation)) $('#wf-agg').appendChild(option(d.aggregation, d.aggregation, true));
    $('#wf-window').value = d.window_seconds ?? 10;
    $('#wf-refresh').value = d.refresh_interval_seconds ?? 1;
    $('#wf-unit').value = display.unit || '';
    $('#wf-chart').value = display.chart || 'line';
    $('#wf-filters').replaceChildren();
    fillMetricSelect(d.metric_name || '');
    fillGroupBy(d.group_by || '');
    for (const [k, v] of Object.entries(d.tag_filter || {})) addFilterRow(k, v);
    dlg.showModal();
    $('#wf-title').focus();
    // the catalog (metrics the server has seen) for the pickers
    await loadCatalog(false);
    if (!dlg.open) return;
    const metric = metricValue();
    const group = $('#wf-groupby').value;
    fillMetricSelect(metric || d.metric_name || '');
    fillGroupBy(group);
    fillKeyList();
    dlg.dataset.catalog = ed.catalog.available ? String(ed.catalog.metrics.length) : 'unavailable';
  }

  $('#wf-metric').addEventListener('change', () => {
    const other = $('#wf-metric').value === '__other';
    $('#wf-metric-other').hidden = !other;
    if (other) $('#wf-metric-other').focus();
    fillGroupBy($('#wf-groupby').value);
    fillKeyList();
    if (!$('#wf-title').value.trim() && !other) $('#wf-title').value = $('#wf-metric').value;
  });
  $('#wf-add-filter').addEventListener('click', () => addFilterRow('', '').focus());

  /** The widget the form describes, or null (with the field errors shown). */
  function widgetFromForm() {
    const dlg = $('#widget-dialog');
    clearErrors(dlg);
    const base = ed.widgetForm && ed.widgetForm.def ? JSON.parse(JSON.stringify(ed.widgetForm.def)) : null;
    const w = base || { widget_id: newUuid(), dashboard_id: currentId() };
    const display = Object.assign({}, w.display_config || w.display || {});
    delete w.display;
    let ok = true;
    w.title = $('#wf-title').value.trim();
    w.metric_name = metricValue();
    if (!w.metric_name) ok = invalid($('#wf-metric').value === '__other' ? 'wf-metric-other' : 'wf-metric', 'Choose a metric.', 'wf-metric-error');
    w.aggregation = $('#wf-agg').value;
    const win = $('#wf-window').value.trim();
    if (!/^\d+$/.test(win)) ok = invalid('wf-window', 'Enter a whole number of seconds.');
    else w.window_seconds = Number(win);
    const ref = Number($('#wf-refresh').value);
    if ($('#wf-refresh').value.trim() === '' || !Number.isFinite(ref)) ok = invalid('wf-refresh', 'Enter a number of seconds.');
    else w.refresh_interval_seconds = ref;
    display.chart = $('#wf-chart').value;
    const unit = $('#wf-unit').value.trim();
    if (unit) display.unit = unit;
    else delete display.unit;
    const filter = {};
    for (const row of $('#wf-filters').querySelectorAll('.filter-row')) {
      const k = $('.fk', row).value.trim();
      const v = $('.fv', row).value.trim();
      if (!k && !v) continue;
      if (!k || !v) {
        ok = invalid(k ? $('.fv', row).id : $('.fk', row).id, 'Give both the tag and its value.', 'wf-filters-error');
        continue;
      }
      filter[k] = v;
    }
    if (Object.keys(filter).length) w.tag_filter = filter;
    else delete w.tag_filter;
    const g = $('#wf-groupby').value;
    if (g) w.group_by = g;
    else delete w.group_by;
    w.display_config = display;
    if (!ok) {
      const bad = dlg.querySelector('[aria-invalid="true"]');
      if (bad) bad.focus();
      return null;
    }
    return w;
  }

  /** The control a violation path of a widget names (`widgets[3].window_seconds`, or
   *  `window_seconds` in a preview), or null. */
  function widgetControl(path, index) {
    const m = /^widgets\[(\d+)\]\.(.*)$/.exec(path);
    if (m && index !== null && Number(m[1]) !== index) return null;
    const field = m ? m[2] : path;
    const f = field.replace(/^display_config\./, '').replace(/^display\./, '');
    if (f === 'title') return 'wf-title';
    if (f === 'metric_name') return $('#wf-metric').value === '__other' ? 'wf-metric-other' : 'wf-metric';
    if (f === 'aggregation') return 'wf-agg';
    if (f === 'window_seconds') return 'wf-window';
    if (f === 'refresh_interval_seconds') return 'wf-refresh';
    if (f === 'unit') return 'wf-unit';
    if (f === 'chart') return 'wf-chart';
    if (f.startsWith('group_by')) return 'wf-groupby';
    if (f.startsWith('tag_filter')) {
      const first = $('#wf-filters .fk');
      return first ? first.id : null;
    }
    return null;
  }

  function showWidgetErrors(err, index) {
    showViolations(err, (p) => widgetControl(p, index), $('#wf-msg'));
  }

  $('#widget-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const w = widgetFromForm();
    if (!w) return;
    const dash = state.dashboard;
    if (!dash) return;
    const adding = ed.widgetForm.mode === 'add';
    const index = adding ? (dash.widgets || []).length : (dash.widgets || []).findIndex((x) => x.widget_id === w.widget_id);
    try {
      const doc = await write('PATCH', `/dashboards/${encodeURIComponent(dash.id)}/widgets`, adding ? { add: [w] } : { update: [w] });
      $('#widget-dialog').close();
      applyDoc(doc);
      announceEdit(`${adding ? 'Added' : 'Saved'} ${w.title}`);
      restoreEditFocus({ widget: w.widget_id, action: 'edit' });
    } catch (err) {
      showWidgetErrors(err, index < 0 ? null : index);
    }
  });

  $('#wf-preview-btn').addEventListener('click', async () => {
    const out = $('#wf-preview');
    const w = widgetFromForm();
    if (!w) {
      out.textContent = '';
      return;
    }
    out.textContent = 'Computing…';
    out.dataset.state = 'pending';
    try {
      const body = Object.assign({}, w);
      const v = await write('POST', '/preview', body);
      const unit = (w.display_config && w.display_config.unit) || '';
      const groups = v && (v.groups || (v.value !== null && typeof v.value === 'object' ? v.value : null));
      let text;
      if (groups && typeof groups === 'object') {
        const entries = Array.isArray(groups) ? groups.map((g) => [g.group ?? g.key ?? g.name ?? '', g.value ?? g]) : Object.entries(groups);
        text = entries.length ? entries.map(([g, x]) => `${g}: ${fmt(num(x && typeof x === 'object' ? x.value : x), unit)}`).join(' · ') : 'no group has data now';
      } else text = fmt(num(v && v.value), unit);
      const count = v && num(v.count) !== null ? ` · ${NF_INT.format(v.count)} events in the window` : '';
      out.textContent = `Now: ${text}${count}`;
      out.dataset.state = 'ok';
    } catch (err) {
      out.textContent = `Preview failed: ${err.message}`;
      out.dataset.state = 'error';
      if (err.violations && err.violations.length) showWidgetErrors(err, null);
    }
  });

  function newUuid() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // ---------------------------------------------------------------- alert rules

  const rulesOf = (widgetId) => ((state.dashboard && state.dashboard.alert_rules) || []).filter((r) => r.widget_id === widgetId);

  function openRulesDialog(def) {
    ed.rulesWidget = def.widget_id;
    $('#rules-dialog-title').textContent = `Alert rules: ${def.title}`;
    resetRuleForm();
    renderRules();
    $('#rules-dialog').showModal();
    const first = $('#rules-list button') || $('#rf-name');
    first.focus();
  }

  function ruleSummary(r, unit) {
    const cond = `${r.condition} ${fmtPlain(num(r.threshold), unit)}`;
    const hold = r.for_seconds ? ` for ${r.for_seconds} s` : '';
    return `${cond}${hold}`;
  }

  function renderRules() {
    const list = $('#rules-list');
    const view = state.views.get(ed.rulesWidget);
    const unit = view ? view.unit : '';
    const rules = rulesOf(ed.rulesWidget);
    if (!state.dashboard || !view) {
      list.replaceChildren(el('li', 'empty', 'This widget was removed.'));
      return;
    }
    if (!rules.length) {
      list.replaceChildren(el('li', 'empty', 'No alert rule on this widget yet.'));
      return;
    }
    const now = serverNow();
    list.replaceChildren(...rules.map((r) => {
      const li = el('li', 'rule');
      li.dataset.ruleId = r.id;
      const name = r.name || 'unnamed rule';
      const sev = r.severity || 'warning';
      const head = el('div', 'rule-head');
      head.append(el('span', `pill sev sev-${sev}`, sev), el('strong', 'rule-name', name), el('span', 'rule-cond', ruleSummary(r, unit)));
      const silenced = num(r.silenced_until) !== null && r.silenced_until > now;
      if (silenced) head.append(el('span', 'rule-silenced', `silenced until ${fmtTimeFull(r.silenced_until)}`));
      const hooks = Array.isArray(r.webhooks) && r.webhooks.length ? el('div', 'rule-hooks', `webhooks: ${r.webhooks.join(', ')}`) : null;
      const actions = el('div', 'rule-actions');
      const btn = (text, label, fn, cls) => {
        const b = el('button', `btn btn-small${cls ? ` ${cls}` : ''}`, text);
        b.type = 'button';
        b.setAttribute('aria-label', `${label} ${name}`);
        b.addEventListener('click', fn);
        actions.appendChild(b);
        return b;
      };
      btn('Edit', 'Edit rule', () => editRule(r)).dataset.action = 'edit-rule';
      if (silenced) btn('Unsilence', 'Unsilence', () => silenceRule(r.id, null)).dataset.action = 'unsilence';
      else {
        for (const [label, ms] of SILENCE_FOR) btn(`Silence ${label}`, `Silence ${label}:`, () => silenceRule(r.id, ms)).dataset.action = `silence-${ms}`;
      }
      btn('Delete', 'Delete rule', () => deleteRule(r.id), 'btn-danger-outline').dataset.action = 'delete-rule';
      li.append(head);
      if (hooks) li.append(hooks);
      li.append(actions);
      return li;
    }));
  }

  function resetRuleForm() {
    ed.editingRule = null;
    const form = $('#rule-form');
    clearErrors(form);
    $('#rule-form-title').textContent = 'New rule';
    $('#rf-save').textContent = 'Add rule';
    $('#rf-cancel').hidden = true;
    $('#rf-name').value = '';
    $('#rf-severity').value = 'warning';
    $('#rf-condition').value = 'above';
    $('#rf-threshold').value = '';
    $('#rf-for').value = '0';
    $('#rf-webhooks').value = '';
  }

  function editRule(r) {
    resetRuleForm();
    ed.editingRule = r.id;
    $('#rule-form-title').textContent = `Edit rule: ${r.name || 'unnamed rule'}`;
    $('#rf-save').textContent = 'Save rule';
    $('#rf-cancel').hidden = false;
    $('#rf-name').value = r.name || '';
    $('#rf-severity').value = r.severity || 'warning';
    $('#rf-condition').value = r.condition || 'above';
    $('#rf-threshold').value = r.threshold ?? '';
    $('#rf-for').value = r.for_seconds ?? 0;
    $('#rf-webhooks').value = (r.webhooks || []).join('\n');
    $('#rf-name').focus();
  }
  $('#rf-cancel').addEventListener('click', () => {
    resetRuleForm();
    $('#rf-name').focus();
  });

  /** A rule as sent: the new fields only when they differ from their defaults (a
   *  server without them still takes the rule). */
  function cleanRule(r) {
    const out = { id: r.id, widget_id: r.widget_id, condition: r.condition, threshold: r.threshold, for_seconds: r.for_seconds ?? 0 };
    if (r.name) out.name = r.name;
    if (r.severity && r.severity !== 'warning') out.severity = r.severity;
    if (num(r.silenced_until) !== null) out.silenced_until = r.silenced_until;
    if (Array.isArray(r.webhooks) && r.webhooks.length) out.webhooks = r.webhooks;
    return out;
  }

  /** GET the rules, change them with `fn(list)`, PUT the whole list. */
  async function changeRules(fn) {
    const id = encodeURIComponent(currentId());
    const doc = await getJson(`/dashboards/${id}/alert-rules`);
    const list = (Array.isArray(doc) ? doc : doc.alert_rules || []).map((r) => Object.assign({}, r));
    const next = fn(list);
    const saved = await write('PUT', `/dashboards/${id}/alert-rules`, { alert_rules: next.map(cleanRule) });
    if (state.dashboard && saved && Array.isArray(saved.alert_rules)) {
      // drawn at once; the `dashboard` frame brings the same document
      state.dashboard = Object.assign({}, state.dashboard, { alert_rules: saved.alert_rules });
      for (const v of state.views.values()) markDirty(v);
    }
    renderRules();
    return { next, saved };
  }

  $('#rule-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = $('#rule-form');
    clearErrors(form);
    let ok = true;
    const thresholdText = $('#rf-threshold').value.trim();
    const threshold = Number(thresholdText);
    if (thresholdText === '' || !Number.isFinite(threshold)) ok = invalid('rf-threshold', 'Enter a number.');
    const forText = $('#rf-for').value.trim();
    const forSeconds = forText === '' ? 0 : Number(forText);
    if (!Number.isFinite(forSeconds)) ok = invalid('rf-for', 'Enter a number of seconds.');
    const hooks = $('#rf-webhooks').value.split('\n').map((x) => x.trim()).filter(Boolean);
    if (!ok) return form.querySelector('[aria-invalid="true"]').focus();
    const editing = ed.editingRule;
    const rule = {
      id: editing || newUuid(),
      widget_id: ed.rulesWidget,
      name: $('#rf-name').value.trim(),
      condition: $('#rf-condition').value,
      threshold,
      for_seconds: forSeconds,
      severity: $('#rf-severity').value,
      webhooks: hooks,
    };
    let index = -1;
    try {
      await changeRules((list) => {
        index = list.findIndex((r) => r.id === rule.id);
        if (index >= 0) {
          // keep what the form does not show (e.g. silenced_until)
          list[index] = Object.assign({}, list[index], rule);
        } else {
          index = list.length;
          list.push(rule);
        }
        return list;
      });
      announceEdit(editing ? `Saved rule ${rule.name || ''}` : `Added rule ${rule.name || ''}`);
      resetRuleForm();
      $('#rf-name').focus();
    } catch (err) {
      const fields = { name: 'rf-name', condition: 'rf-condition', threshold: 'rf-threshold', for_seconds: 'rf-for', severity: 'rf-severity', webhooks: 'rf-webhooks' };
      showViolations(err, (p) => {
        const m = /^alert_rules\[(\d+)\]\.([a-z_]+)/.exec(p);
        if (m && Number(m[1]) === index) return fields[m[2]] || null;
        if (!m && fields[p]) return fields[p];
        return null;
      }, $('#rf-msg'));
    }
  });

  async function silenceRule(ruleId, ms) {
    try {
      await changeRules((list) => list.map((r) => {
        if (r.id !== ruleId) return r;
        const copy = Object.assign({}, r);
        if (ms) copy.silenced_until = Math.round(serverNow() + ms);
        else delete copy.silenced_until;
        return copy;
      }));
      announceEdit(ms ? 'Rule silenced' : 'Rule unsilenced');
      const b = document.querySelector(`#rules-list li[data-rule-id="${CSS.escape(ruleId)}"] [data-action="${ms ? 'unsilence' : 'edit-rule'}"]`);
      if (b) b.focus();
    } catch (err) {
      $('#rf-msg').textContent = err.message;
    }
  }

  async function deleteRule(ruleId) {
    try {
      await changeRules((list) => list.filter((r) => r.id !== ruleId));
      if (ed.editingRule === ruleId) resetRuleForm();
      announceEdit('Rule deleted');
      const b = $('#rules-list button') || $('#rf-name');
      b.focus();
    } catch (err) {
      $('#rf-msg').textContent = err.message;
    }
  }

  // ---------------------------------------------------------------- alert history

  function historyQuery(before) {
    const q = new URLSearchParams();
    q.set('limit', String(HISTORY_PAGE));
    const st = $('#history-state').value;
    const sev = $('#history-severity').value;
    if (st) q.set('state', st);
    if (sev) q.set('severity', sev);
    if (before !== null && before !== undefined) q.set('before', String(before));
    return q.toString();
  }

  /** Loads the newest page of the alert history (or, with `older`, the next page). */
  async function loadHistoryPanel(older) {
    const id = currentId();
    if (!id || state.gone) return;
    const gen = state.gen;
    const h = ed.history;
    if (older && (h.next === null || h.next === undefined)) return;
    h.status = 'loading';
    try {
      const doc = await getJson(`/dashboards/${encodeURIComponent(id)}/alert-history?${historyQuery(older ? h.next : null)}`);
      if (gen !== state.gen) return;
      const recs = Array.isArray(doc.records) ? doc.records : [];
      h.records = older ? h.records.concat(recs.filter((r) => !h.records.some((x) => x.seq === r.seq))) : recs;
      h.next = doc.next ?? null;
      h.status = 'ok';
      h.error = null;
      h.loads++;
    } catch (err) {
      if (gen !== state.gen) return;
      h.status = 'error';
      h.error = err.status === 404 && !String(err.message).includes('unknown_dashboard')
        ? 'This server keeps no alert history.'
        : `Alert history unavailable: ${err.message}`;
    }
    renderHistory();
  }

  function refreshHistoryPanel() {
    // keep the pages loaded when only refreshing; a new first page replaces them
    loadHistoryPanel(false);
  }

  /** An `alert` frame: the history again, shortly (the record is written meanwhile). */
  function scheduleHistoryRefresh() {
    const h = ed.history;
    if (h.timer) return;
    h.timer = setTimeout(() => {
      h.timer = 0;
      loadHistoryPanel(false);
    }, 400);
  }

  $('#history-state').addEventListener('change', () => loadHistoryPanel(false));
  $('#history-severity').addEventListener('change', () => loadHistoryPanel(false));
  $('#history-older').addEventListener('click', async () => {
    const n = ed.history.records.length;
    await loadHistoryPanel(true);
    const li = $('#history-list').children[n];
    if (li) {
      li.tabIndex = -1;
      li.focus();
    }
  });

  function outcomeText(ns) {
    // one line per webhook URL: its latest outcome, and the attempts
    const byUrl = new Map();
    for (const n of ns || []) {
      const prev = byUrl.get(n.url);
      if (!prev || (num(n.at) ?? 0) >= (num(prev.at) ?? 0)) byUrl.set(n.url, n);
    }
    return [...byUrl.values()].map((n) => {
      let host = n.url;
      try {
        host = new URL(n.url).host;
      } catch (err) {
        // as given
      }
      const outcome = String(n.outcome || 'pending').replace('_', ' ');
      const tries = num(n.attempts) !== null && n.attempts > 1 ? ` ×${n.attempts}` : '';
      const err = n.error ? String(n.error) : '';
      const why = n.outcome === 'failed' && (n.status || err) ? ` (${n.status ? `HTTP ${n.status}` : err.length > 60 ? `${err.slice(0, 59)}…` : err})` : '';
      return { text: `webhook ${host}: ${outcome}${tries}${why}`, outcome: n.outcome || 'pending' };
    });
  }

  function renderHistory() {
    const h = ed.history;
    const list = $('#history-list');
    const older = $('#history-older');
    older.hidden = h.next === null || h.next === undefined || h.status === 'error';
    if (h.status === 'error' && !h.records.length) {
      list.dataset.key = '';
      list.replaceChildren(el('li', 'empty', h.error));
      return;
    }
    if (!h.records.length) {
      list.dataset.key = '';
      list.replaceChildren(el('li', 'empty', h.status === 'loading' || h.status === 'idle' ? 'Loading…' : 'No records'));
      return;
    }
    const key = JSON.stringify(h.records.map((r) => [r.seq, r.ended_at, (r.notifications || []).map((n) => n.outcome + n.attempts)]));
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren(...h.records.map((r) => {
      const firing = r.ended_at === null || r.ended_at === undefined;
      const li = el('li', firing ? 'firing' : '');
      li.dataset.seq = String(r.seq);
      li.dataset.state = firing ? 'firing' : 'resolved';
      const sev = r.severity || 'warning';
      const view = r.widget && state.views.get(r.widget);
      const unit = view ? view.unit : '';
      const head = el('div', 'hist-head');
      const name = r.rule_name || (view ? view.def.title : 'alert');
      head.append(el('span', `pill sev sev-${sev}`, sev), el('strong', 'hist-name', `${name}${r.group ? ` [${r.group}]` : ''}`));
      const value = el('div', 'hist-value', `${fmt(num(r.value), unit)} (${r.condition || ''} ${fmtPlain(num(r.threshold), unit)})${r.silenced ? ' · silenced' : ''}`);
      const start = el('time', null, fmtTimeFull(r.started_at));
      start.dateTime = new Date(r.started_at).toISOString();
      const when = el('div', 'hist-when');
      if (firing) {
        const dur = el('span', 'hist-dur', ` ${fmtDuration(serverNow() - r.started_at)}`);
        dur.dataset.since = String(r.started_at);
        when.append(start, el('span', null, ' → '), el('span', 'pill firing', 'firing'), dur);
      }
      else {
        const end = el('time', null, fmtTimeFull(r.ended_at));
        end.dateTime = new Date(r.ended_at).toISOString();
        const dur = num(r.duration_ms) ?? r.ended_at - r.started_at;
        when.append(start, el('span', null, ' → '), end, el('span', null, ` · ${fmtDuration(dur)}`));
      }
      li.append(head, value, when);
      for (const o of outcomeText(r.notifications)) li.append(el('div', `hist-hook hook-${o.outcome}`, o.text));
      return li;
    }));
  }

  /** Once a second: how long the open records have been firing. */
  function tickHistory() {
    for (const d of document.querySelectorAll('#history-list .hist-dur')) {
      setText(d, ` ${fmtDuration(serverNow() - Number(d.dataset.since))}`);
    }
  }
  setInterval(tickHistory, 1000);

  // ---------------------------------------------------------------- hooks

  Object.assign(window.__rtdash, {
    // the dashboard shown (null before the first load)
    dashboardId: () => currentId() || null,
    // whether edit mode is on
    editing: () => ed.editing,
    // the dashboards of the list: [{id, name}]
    dashboards: () => ed.dashboards.map((d) => Object.assign({}, d)),
    // the alert rules of a widget, as the page holds them
    rules: (id) => rulesOf(id).map((r) => Object.assign({}, r)),
    // the metric catalog last loaded ({metrics, truncated, available}), or null
    catalog: () => ed.catalog,
    // records of the alert history panel, newest first, and how many loads were applied
    historyRecords: () => ed.history.records.slice(),
    historyPanelLoads: () => ed.history.loads,
    // successful API writes, and the last refused one ({status, code, message, violations})
    writes: () => ed.writes,
    lastError: () => ed.lastError,
    // the id of a dashboard deleted while shown, else null
    gone: () => state.gone,
  });


  window.addEventListener('online', retryNow);
  readTheme();
  const scheme = window.matchMedia('(prefers-color-scheme: light)');
  const onScheme = () => {
    readTheme();
    for (const v of state.views.values()) markDirty(v);
  };
  if (scheme.addEventListener) scheme.addEventListener('change', onScheme);
  setInterval(tick, 1000);
  tick();
  connect();
})();
