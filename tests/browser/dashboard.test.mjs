// Headless-browser test of the dashboard example.
//
// Starts `examples/dashboard` on a free port, opens its page in Debian's
// Chromium (driven by playwright-core), and checks that the widgets render,
// that their values change, that the connection status goes to
// `reconnecting` when the server is killed and back to `live` when it is
// started again on the same port, and that the server stops cleanly on
// SIGINT. History (issue #15): once the server has run 30 s (its uptime
// during the checks above, not an extra wait), a freshly opened page, and the
// same page reloaded, draw every line and area chart with at least 20 points
// within 1 s of load; switching the range picker to 1 h spans the hour while
// live values keep coming. Saves a screenshot to docs/screenshot.png.
//
// Run: `bash .ci/browser.sh` from the repository root (installs Chromium and
// the npm package, builds the example, runs this script).
//
// Environment:
//   RTDASH_DASHBOARD_BIN  the example binary (default:
//                         $CARGO_TARGET_DIR or ./target, + release/examples/dashboard)
//   RTDASH_SCREENSHOT     where to save the screenshot (default docs/screenshot.png)
//   CHROMIUM              the browser (default /usr/bin/chromium)
//   RTDASH_TEST_TIMEOUT_S overall time limit in seconds (default 240)

import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import {
  ROOT, BIN, CHROMIUM, CHROMIUM_ARGS as BASE_ARGS, sleep, log, CheckFailed, check, waitFor,
  startServer, axeViolations, runTest,
} from './harness.mjs';

const SCREENSHOT = resolve(ROOT, process.env.RTDASH_SCREENSHOT || 'docs/screenshot.png');
const TIMEOUT_S = Number(process.env.RTDASH_TEST_TIMEOUT_S || 240);
const VIEWPORTS = [[390, 844], [820, 1180], [1440, 1000]];
const PERF_SECONDS = Number(process.env.RTDASH_PERF_SECONDS || 10);
const CHROMIUM_ARGS = ['--headless', ...BASE_ARGS];

let context = null;
let userDataDir = null;

/** Starts the server on a fixed port, retrying while the port is still held. */
async function restartOnPort(port, extraArgs) {
  let lastErr;
  for (let i = 0; i < 20; i++) {
    try {
      return await startServer(`127.0.0.1:${port}`, extraArgs);
    } catch (err) {
      lastErr = err;
      await sleep(500);
    }
  }
  throw lastErr;
}

function waitExit(proc, ms) {
  if (proc.exited) return Promise.resolve(proc.exited);
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`server did not exit within ${ms} ms`)), ms);
    proc.once('exit', (code, signal) => {
      clearTimeout(t);
      res({ code, signal });
    });
  });
}

/** Horizontal overflow: the document scrolls sideways, or an element's right edge is past the viewport. */
async function overflowOf(page) {
  return page.evaluate(() => {
    const out = [];
    const de = document.documentElement;
    if (de.scrollWidth > de.clientWidth) out.push(`document scrollWidth ${de.scrollWidth} > ${de.clientWidth}`);
    const vw = de.clientWidth;
    for (const e of document.body.querySelectorAll('*')) {
      const r = e.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.right > vw + 0.5 || r.left < -0.5) {
        out.push(`${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${[...e.classList].join('.')} [${Math.round(r.left)}, ${Math.round(r.right)}]`);
      }
    }
    // text cut off in its box (ellipsis or clipping): the title, widget titles and footers, table cells
    for (const e of document.querySelectorAll('h1, .widget-title, .widget-foot, table.values td, table.values th, .facts dd')) {
      if (e.scrollWidth > e.clientWidth + 1) out.push(`text cut in ${e.tagName.toLowerCase()}.${e.className} "${e.textContent.slice(0, 30)}" (${e.scrollWidth} > ${e.clientWidth})`);
    }
    for (const w of document.querySelectorAll('.table-wrap')) {
      if (w.scrollWidth > w.clientWidth + 1) out.push(`table wider than its widget (${w.scrollWidth} > ${w.clientWidth})`);
    }
    return out;
  });
}

const statusOf = (page) => page.getAttribute('#status', 'data-status');
const valuesOf = (page) => page.$$eval('section.widget[data-widget-id]', (els) =>
  Object.fromEntries(els.map((e) => [e.dataset.widgetId, { chart: e.dataset.chart, value: e.dataset.value || '', stale: e.dataset.stale }])));

async function main() {
  if (!existsSync(BIN)) throw new CheckFailed(`no binary at ${BIN}: run \`cargo build --release --example dashboard\` or set RTDASH_DASHBOARD_BIN`);
  if (!existsSync(CHROMIUM)) throw new CheckFailed(`no browser at ${CHROMIUM}: \`apt-get install -y chromium\` or set CHROMIUM`);

  // Fire an incident (error spike) a few seconds in, so an alert is seen.
  const demoArgs = ['--incident-after', '3'];
  let server;
  let serverStartedAt = 0;
  await check('the example starts on port 0 and prints its URL', async () => {
    server = await startServer('127.0.0.1:0', demoArgs);
    serverStartedAt = Date.now();
    return server.url;
  });
  const { url, port } = server;

  userDataDir = mkdtempSync(join(tmpdir(), 'rtdash-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 1000 },
    deviceScaleFactor: 1,
  });
  const page = context.pages()[0] || (await context.newPage());
  // The dark theme (headless Chromium reports "light" by default); the light one is checked later.
  await page.emulateMedia({ colorScheme: 'dark' });
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|WebSocket connection/.test(m.text())) pageErrors.push(m.text());
  });

  await check('the page loads and names the dashboard', async () => {
    const res = await page.goto(url, { waitUntil: 'load', timeout: 20000 });
    if (!res || !res.ok()) throw new Error(`GET ${url} answered ${res && res.status()}`);
    const name = await waitFor('the dashboard name', 10000, async () => {
      const t = (await page.textContent('#dashboard-name')) || '';
      return t && t !== 'loading…' ? t : null;
    });
    return name;
  });

  let dash;
  await check('every widget of the dashboard JSON is laid out, all six chart types', async () => {
    const list = await (await fetch(new URL('/dashboards', url))).json();
    const first = Array.isArray(list) ? list[0] : (list.dashboards || list.items || [])[0];
    const id = typeof first === 'string' ? first : first.id;
    const doc = await (await fetch(new URL(`/dashboards/${encodeURIComponent(id)}`, url))).json();
    dash = doc.dashboard || doc;
    const want = dash.widgets.map((w) => w.widget_id).sort();
    const got = await waitFor('widgets in the page', 10000, async () => {
      const v = Object.keys(await valuesOf(page)).sort();
      return v.length === want.length ? v : null;
    });
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`page has ${got}, dashboard has ${want}`);
    const charts = new Set(dash.widgets.map((w) => (w.display_config || w.display).chart));
    for (const c of ['line', 'area', 'gauge', 'stat', 'table', 'heatmap']) {
      if (!charts.has(c)) throw new Error(`the demo dashboard has no ${c} widget`);
    }
    return `${want.length} widgets`;
  });

  await check('the connection status becomes live', async () => {
    await waitFor('#status[data-status=live]', 20000, async () => (await statusOf(page)) === 'live');
  });
  const gridTop = () => page.evaluate(() => document.querySelector('#grid').getBoundingClientRect().top + window.scrollY);
  const gridTopBefore = await gridTop();

  await check('every widget receives a value and none is stale', async () => {
    const v = await waitFor('a value in every widget', 20000, async () => {
      const vals = await valuesOf(page);
      return Object.values(vals).every((x) => x.value !== '' && x.stale === 'false') ? vals : null;
    });
    return `${Object.keys(v).length} widgets with values`;
  });

  await check('canvas widgets draw something', async () => {
    const blank = await waitFor('drawn canvases', 10000, async () => {
      const b = await page.$$eval('section.widget canvas', (cs) => cs.filter((c) => {
        if (c.width < 2 || c.height < 2) return true;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 4 * 7) if (d[i] !== 0) return false;
        return true;
      }).map((c) => c.closest('[data-widget-id]').dataset.widgetId));
      return b.length === 0 ? [] : null;
    });
    return blank.length === 0 ? 'all canvases have pixels' : '';
  });

  await check('values change over a few seconds', async () => {
    const before = await valuesOf(page);
    const shownBefore = await page.$$eval('[data-role="value"]', (els) => els.map((e) => e.textContent).join('|'));
    const changed = await waitFor('changed values', 15000, async () => {
      const now = await valuesOf(page);
      const ids = Object.keys(now).filter((id) => before[id] && now[id].value !== before[id].value);
      return ids.length >= Math.ceil(Object.keys(now).length / 2) ? ids : null;
    });
    const shownAfter = await page.$$eval('[data-role="value"]', (els) => els.map((e) => e.textContent).join('|'));
    if (shownAfter === shownBefore) throw new Error('the displayed values did not change');
    return `${changed.length} of ${Object.keys(before).length} widgets changed`;
  });

  await check('an alert fires and is shown', async () => {
    const text = await waitFor('a firing alert in #alert-list', 60000, async () => {
      const t = await page.$$eval('#alert-list li.firing', (els) => els.map((e) => e.textContent).join(' | '));
      return t || null;
    }, 500);
    if (await page.isHidden('#alert-banner')) throw new Error('the alert banner is hidden while an alert fires');
    const title = await page.title();
    if (!/^\(\d+\) /.test(title)) throw new Error(`the tab title "${title}" does not count the firing alerts`);
    const firing = await page.$$eval('section.widget.alerting', (els) => els.map((e) => e.dataset.widgetId));
    const spans = await page.evaluate((ids) => ids.map((id) => window.__rtdash.alertSpans(id)).flat(), firing);
    if (!spans.length) throw new Error(`no alert region on the firing widgets ${firing}`);
    return `${text.slice(0, 60)}; title "${title}"; ${spans.length} shaded alert region(s)`;
  });

  await check('banners cause no layout shift (the grid stays put while the alert banner shows)', async () => {
    const now = await gridTop();
    if (Math.abs(now - gridTopBefore) > 0.5) throw new Error(`the grid moved from ${gridTopBefore} to ${now} px`);
    return `grid top ${now} px before and after`;
  });

  await check('a screenshot of the live dashboard is saved', async () => {
    await sleep(2000); // a little more history in the charts
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    return SCREENSHOT;
  });

  await check(`CDP main-thread time at 1440 px over ${PERF_SECONDS} s is reported (target <= 5 % busy)`, async () => {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const metric = async () => {
      const { metrics } = await cdp.send('Performance.getMetrics');
      const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
      return m;
    };
    const a = await metric();
    const t0 = Date.now();
    const u0 = await page.evaluate(() => Number(document.querySelector('#fact-updates').textContent.replace(/\D/g, '')));
    await sleep(PERF_SECONDS * 1000);
    const b = await metric();
    const wall = (Date.now() - t0) / 1000;
    const u1 = await page.evaluate(() => Number(document.querySelector('#fact-updates').textContent.replace(/\D/g, '')));
    await cdp.detach();
    const busy = ((b.TaskDuration - a.TaskDuration) / wall) * 100;
    const layouts = (b.LayoutCount - a.LayoutCount) / wall;
    const styles = (b.RecalcStyleCount - a.RecalcStyleCount) / wall;
    return `main thread ${busy.toFixed(1)} % busy (${((b.TaskDuration - a.TaskDuration) * 1000 / wall).toFixed(0)} ms/s, script ${(((b.ScriptDuration - a.ScriptDuration) / wall) * 100).toFixed(1)} %), ${layouts.toFixed(1)} layouts/s, ${styles.toFixed(1)} style recalcs/s, ${((u1 - u0) / wall).toFixed(2)} update frames/s`;
  });

  await check('keyboard: Tab reaches the range picker, legend buttons and every widget, with a visible focus', async () => {
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await page.mouse.click(1, 300); // focus the document, nothing interactive
    const need = await page.$$eval('section.widget', (ws) => ws.length);
    const seen = [];
    let onBody = 0;
    const noOutline = [];
    for (let i = 0; i < 80; i++) {
      await page.keyboard.press('Tab');
      const f = await page.evaluate(() => {
        const a = document.activeElement;
        if (!a || a === document.body) return null;
        const cs = getComputedStyle(a);
        const w = a.closest('section.widget');
        return {
          tag: a.tagName.toLowerCase(),
          cls: a.className,
          range: !!a.closest('#range'),
          legend: a.classList.contains('legend-item'),
          widget: w ? w.dataset.widgetId : null,
          visible: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 1,
        };
      });
      if (!f) {
        onBody++;
        continue;
      }
      if (!f.visible) noOutline.push(`${f.tag}.${f.cls}`);
      seen.push(f);
    }
    const widgets = new Set(seen.filter((f) => f.widget).map((f) => f.widget));
    const ranges = seen.filter((f) => f.range).length;
    const legends = seen.filter((f) => f.legend).length;
    if (!ranges) throw new Error('Tab never reached the range picker');
    if (!legends) throw new Error('Tab never reached a legend button');
    if (widgets.size < need) throw new Error(`Tab reached ${widgets.size} of ${need} widgets`);
    if (noOutline.length) throw new Error(`focused without a visible outline: ${[...new Set(noOutline)].join(', ')}`);
    if (onBody > 8) throw new Error(`focus was on <body> ${onBody} times out of 80 presses`);
    return `${seen.length} focus stops in 80 presses: ${ranges} range, ${legends} legend, ${widgets.size}/${need} widgets`;
  });

  await check('full screen: the widget button shows it over the page; Escape closes it', async () => {
    const sel = 'section.widget[data-chart="line"]';
    await page.locator(`${sel} .expand`).first().click();
    const box = await waitFor('the widget full screen', 2000, async () => {
      const r = await page.$eval(`${sel}.fullscreen`, (e) => e.getBoundingClientRect().width).catch(() => 0);
      return r > 1000 ? r : null;
    });
    await page.keyboard.press('Escape');
    await waitFor('full screen closed', 2000, async () => (await page.$$(`${sel}.fullscreen`)).length === 0);
    return `${Math.round(box)} px wide, closed with Escape`;
  });

  for (const [vw, vh] of VIEWPORTS) {
    await check(`at ${vw}×${vh}: nothing overflows, the title shows, alerts near the top, axe finds no serious issue; screenshot saved`, async () => {
      await page.setViewportSize({ width: vw, height: vh });
      await sleep(700);
      const over = await overflowOf(page);
      if (over.length) throw new Error(over.slice(0, 8).join('; '));
      const h1 = await page.$eval('#dashboard-name', (e) => e.getBoundingClientRect().width);
      if (h1 < 40) throw new Error(`the dashboard name is ${h1} px wide`);
      const alertsTop = await page.$eval('#alert-list', (e) => e.getBoundingClientRect().top + window.scrollY);
      if (vw < 1100 && alertsTop > vh) throw new Error(`the alerts panel starts ${Math.round(alertsTop)} px down`);
      const bad = await axeViolations(page);
      if (bad.length) throw new Error(`axe: ${bad.map((v) => `${v.id} (${v.impact}, ${v.n}: ${v.nodes})`).join('; ')}`);
      const shot = SCREENSHOT.replace(/\.png$/, `-${vw}.png`);
      await page.screenshot({ path: shot, fullPage: vw < 1440 });
      return `alerts at ${Math.round(alertsTop)} px; ${shot.slice(ROOT.length + 1)}`;
    });
  }

  await check('light theme: prefers-color-scheme light gives a light page, and axe still finds no serious issue', async () => {
    await page.emulateMedia({ colorScheme: 'light' });
    await sleep(500);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const [r, g, b] = bg.match(/\d+(\.\d+)?/g).map(Number);
    if (r + g + b < 600) throw new Error(`the background is ${bg}`);
    const bad = await axeViolations(page);
    if (bad.length) throw new Error(`axe: ${bad.map((v) => `${v.id} (${v.impact}, ${v.n}: ${v.nodes})`).join('; ')}`);
    await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, '-light.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    return `background ${bg}`;
  });

  // History: the server has been up for the checks above; top up to 30 s if needed.
  const charts = dash.widgets
    .filter((w) => ['line', 'area'].includes((w.display_config || w.display).chart))
    .map((w) => w.widget_id);
  const grouped = dash.widgets.find((w) => (w.display_config || w.display).chart === 'line' && w.group_by && (w.display_config || w.display).unit);

  await check('hovering a chart shows a crosshair and a tooltip with values and the unit', async () => {
    const sel = `section.widget[data-widget-id="${grouped.widget_id}"]`;
    const unit = (grouped.display_config || grouped.display).unit;
    const box = await page.locator(`${sel} canvas`).boundingBox();
    await page.mouse.move(box.x + box.width - 24, box.y + box.height * 0.5); // near now: the newest values
    const text = await waitFor('a visible tooltip', 3000, async () => {
      const t = await page.$eval(`${sel} .chart-tip`, (e) => (e.hidden ? '' : e.textContent));
      return t || null;
    });
    if (!/\d/.test(text) || !text.includes(unit)) throw new Error(`tooltip "${text}" lacks a number or the unit ${unit}`);
    if (await page.isHidden(`${sel} .crosshair`)) throw new Error('no crosshair');
    await page.mouse.move(0, 0);
    await waitFor('the tooltip gone after leaving', 2000, async () => page.isHidden(`${sel} .chart-tip`));
    return text.replace(/\s+/g, ' ').slice(0, 90);
  });

  await check('threshold lines are always in view: every chart axis reaches its thresholds and alert rules', async () => {
    const out = [];
    for (const w of dash.widgets.filter((x) => charts.includes(x.widget_id))) {
      const d = w.display_config || w.display;
      const ts = (d.thresholds || []).slice(1).map((t) => t.value)
        .concat((dash.alert_rules || []).filter((r) => r.widget_id === w.widget_id).map((r) => r.threshold));
      if (!ts.length) continue;
      const y = await page.evaluate((id) => window.__rtdash.yRange(id), w.widget_id);
      for (const t of ts) if (!(y && t >= y.lo && t <= y.hi)) throw new Error(`${w.title}: threshold ${t} outside the axis ${JSON.stringify(y)}`);
      out.push(`${w.title} ${y.lo}..${y.hi} ∋ ${ts.join(',')}`);
    }
    return out.join('; ');
  });

  await check('a legend entry is a toggle button: a click hides its series, another shows it', async () => {
    const sel = `section.widget[data-widget-id="${grouped.widget_id}"] .widget-legend button`;
    const btn = page.locator(sel).first();
    const group = await btn.getAttribute('data-group');
    if ((await btn.getAttribute('aria-pressed')) !== 'true') throw new Error('a legend button starts not pressed');
    await btn.click();
    await waitFor('the series hidden', 2000, async () => (await page.evaluate((id) => window.__rtdash.hidden(id), grouped.widget_id)).includes(group));
    if ((await btn.getAttribute('aria-pressed')) !== 'false') throw new Error('aria-pressed still true after hiding');
    await waitFor(`the hidden series ${group} no longer drawn`, 2000, async () =>
      !(await page.evaluate((id) => Object.keys(window.__rtdash.segments(id)), grouped.widget_id)).includes(group));
    await btn.click();
    await waitFor('the series shown again', 2000, async () => !(await page.evaluate((id) => window.__rtdash.hidden(id), grouped.widget_id)).includes(group));
    return `${group} hidden and shown again`;
  });

  await check('legend isolate: Shift+click shows only that series, again shows all; Shift+Enter does the same from the keyboard', async () => {
    const sel = `section.widget[data-widget-id="${grouped.widget_id}"] .widget-legend button`;
    const groups = await page.$$eval(sel, (bs) => bs.map((b) => b.dataset.group));
    if (groups.length < 2) throw new Error(`only ${groups.length} legend entries`);
    const btn = page.locator(sel).nth(1);
    const group = groups[1];
    const hidden = () => page.evaluate((id) => window.__rtdash.hidden(id).sort().join(','), grouped.widget_id);
    const others = groups.filter((g) => g !== group).sort().join(',');
    const drawn = () => page.evaluate((id) => Object.keys(window.__rtdash.segments(id)).join(','), grouped.widget_id);
    await btn.click({ modifiers: ['Shift'] });
    await waitFor(`only ${group} shown`, 2000, async () => (await hidden()) === others && (await drawn()) === group);
    await btn.click({ modifiers: ['Shift'] });
    await waitFor('every series shown again', 2000, async () => (await hidden()) === '');
    await btn.focus();
    await page.keyboard.press('Shift+Enter');
    await waitFor(`only ${group} shown (keyboard)`, 2000, async () => (await hidden()) === others);
    await page.keyboard.press('Shift+Enter');
    await waitFor('every series shown again (keyboard)', 2000, async () => (await hidden()) === '');
    return `${group} isolated among ${groups.length} and restored, by mouse and by keyboard`;
  });
  await check('drag to zoom: a horizontal drag freezes the chart on the selected span, with a note; the tooltip still works; double-click and Escape return to live', async () => {
    const id = grouped.widget_id;
    const sel = `section.widget[data-widget-id="${id}"]`;
    const span = () => page.evaluate((i) => window.__rtdash.span(i), id);
    const zoom = () => page.evaluate((i) => window.__rtdash.zoom(i), id);
    const liveSpan = await span();
    const box = await page.locator(`${sel} canvas`).boundingBox();
    const y = box.y + box.height * 0.5;
    const drag = async () => {
      await page.mouse.move(box.x + box.width * 0.72, y);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.8, y, { steps: 5 });
      await page.mouse.move(box.x + box.width * 0.9, y, { steps: 5 });
      await page.mouse.up();
      return waitFor('the chart zoomed', 2000, async () => {
        const z = await zoom();
        const s = await span();
        return z && s < liveSpan * 0.5 ? s : null;
      });
    };
    const zoomed = await drag();
    const note = await page.$eval(`${sel} .zoom-note`, (e) => (e.hidden ? '' : e.textContent));
    if (!/zoomed/i.test(note) || !/live/.test(note)) throw new Error(`no zoom note (got "${note}")`);
    const frozen = await zoom();
    await sleep(1500);
    if (JSON.stringify(await zoom()) !== JSON.stringify(frozen)) throw new Error('the zoomed span moved while values came in');
    await page.mouse.move(box.x + box.width * 0.8, y);
    const tip = await waitFor('a tooltip while zoomed', 2000, async () => page.$eval(`${sel} .chart-tip`, (e) => (e.hidden ? '' : e.textContent)));
    await page.mouse.dblclick(box.x + box.width * 0.8, y);
    const back = await waitFor('live again after a double-click', 2000, async () => {
      const s = await span();
      return !(await zoom()) && s >= liveSpan - 1000 ? s : null;
    });
    if (!(await page.isHidden(`${sel} .zoom-note`))) throw new Error('the zoom note is still shown when live');
    await drag();
    await page.keyboard.press('Escape');
    await waitFor('live again after Escape', 2000, async () => !(await zoom()) && (await span()) >= liveSpan - 1000);
    await page.mouse.move(0, 0);
    return `live span ${(liveSpan / 1000).toFixed(0)} s -> zoomed ${(zoomed / 1000).toFixed(1)} s ("${note.slice(0, 60)}…"; tooltip "${tip.replace(/\s+/g, ' ').slice(0, 40)}…") -> ${(back / 1000).toFixed(0)} s after double-click; Escape too`;
  });

  await check('polite announcements: a focused widget\'s latest values go to its aria-live=polite region, at most every 10 s', async () => {
    const sel = `section.widget[data-widget-id="${grouped.widget_id}"]`;
    const live = await page.$eval(`${sel} .announce`, (e) => e.getAttribute('aria-live'));
    if (live !== 'polite') throw new Error(`aria-live is ${live}`);
    await page.$eval(`${sel} .announce`, (e) => {
      window.__announced = [];
      new MutationObserver(() => window.__announced.push([Date.now(), e.textContent])).observe(e, { childList: true, characterData: true, subtree: true });
    });
    await page.focus(`${sel} .expand`);
    const unit = (grouped.display_config || grouped.display).unit;
    const seen = await waitFor('two announcements', 15000, async () => {
      const a = await page.evaluate(() => window.__announced);
      return a.length >= 2 ? a : null;
    }, 250);
    const [[t1, first], [t2, second]] = seen;
    for (const text of [first, second]) {
      if (!text.includes(grouped.title) || !/\d/.test(text) || !text.includes(unit)) throw new Error(`announcement "${text}" lacks the title, a value or the unit`);
    }
    if (t2 - t1 < 9500) throw new Error(`two announcements ${t2 - t1} ms apart`);
    if (second === first) throw new Error(`the same text announced twice: "${first}"`);
    await page.evaluate(() => document.activeElement.blur());
    return `"${second.slice(0, 80)}…", ${((t2 - t1) / 1000).toFixed(1)} s after the first`;
  });

  const fewestPoints = (p) => p.evaluate((ids) => Math.min(...ids.map((id) => window.__rtdash.points(id))), charts);
  const fresh = await context.newPage();
  fresh.on('pageerror', (err) => pageErrors.push(err.message));
  const openWithHistory = async (open) => {
    const t0 = Date.now();
    await open();
    const loaded = Date.now();
    const n = await waitFor('20 points in every line and area chart', 1000, async () => {
      const k = await fewestPoints(fresh);
      return k >= 20 ? k : null;
    }, 50);
    return `${charts.length} charts, at least ${n} points each, ${Date.now() - loaded} ms after load (${Date.now() - t0} ms after navigation)`;
  };

  await check('a freshly opened page draws its charts with history within 1 s of load', async () => {
    const wait = 30000 - (Date.now() - serverStartedAt);
    if (wait > 0) await sleep(wait);
    return openWithHistory(() => fresh.goto(url, { waitUntil: 'load', timeout: 20000 }));
  });

  await check('after a reload the charts have their history again within 1 s', async () =>
    openWithHistory(() => fresh.reload({ waitUntil: 'load', timeout: 20000 })));

  await check('the range picker switched to 1 h spans the hour while live values keep coming', async () => {
    await waitFor('live', 10000, async () => (await statusOf(fresh)) === 'live');
    const loads = await fresh.evaluate(() => window.__rtdash.historyLoads());
    const before = await valuesOf(fresh);
    await fresh.click('#range button[data-range="1h"]');
    if ((await fresh.getAttribute('#range button[data-range="1h"]', 'aria-pressed')) !== 'true') {
      throw new Error('the 1 h button is not pressed after the click');
    }
    await waitFor('the hour of history', 5000, async () => (await fresh.evaluate(() => window.__rtdash.historyLoads())) > loads);
    const span = await waitFor('a time axis of an hour', 5000, async () => {
      const s = await fresh.evaluate((id) => window.__rtdash.span(id), charts[0]);
      return s >= 55 * 60 * 1000 ? s : null;
    });
    await waitFor('changed values after the switch', 15000, async () => {
      const now = await valuesOf(fresh);
      return Object.keys(now).some((id) => before[id] && now[id].value !== before[id].value);
    });
    const points = await fewestPoints(fresh);
    if (points < 20) throw new Error(`only ${points} points after the switch`);
    await fresh.close();
    return `axis spans ${(span / 60000).toFixed(1)} min; ${points}+ points per chart`;
  });

  let killedAt = 0;
  let restartedAt = 0;
  await check('killing the server turns the status to reconnecting and marks values stale', async () => {
    killedAt = Date.now();
    server.proc.kill('SIGKILL');
    await waitExit(server.proc, 10000);
    await waitFor('#status[data-status=reconnecting]', 15000, async () => (await statusOf(page)) === 'reconnecting');
    await waitFor('every widget marked stale', 5000, async () => Object.values(await valuesOf(page)).every((x) => x.stale === 'true'));
    if (await page.isHidden('#conn-banner')) throw new Error('no visible "connection lost" banner');
  });

  let second;
  await check('restarting the server on the same port brings the status back to live', async () => {
    // an outage of a few steps (1 s each): a shorter one has no missing step to draw
    await sleep(4000);
    second = await restartOnPort(port, ['--incident-after', '3600']);
    const t0 = Date.now();
    restartedAt = t0;
    await waitFor('#status[data-status=live] again', 40000, async () => (await statusOf(page)) === 'live');
    return `live again ${((Date.now() - t0) / 1000).toFixed(1)} s after the restart`;
  });

  await check('values flow again after the reconnect and are fresh', async () => {
    const before = await valuesOf(page);
    await waitFor('changed, fresh values', 20000, async () => {
      const now = await valuesOf(page);
      const changed = Object.keys(now).filter((id) => before[id] && now[id].value !== before[id].value);
      return changed.length > 0 && Object.values(now).every((x) => x.stale === 'false');
    });
  });

  await check('the outage is drawn as a gap: every line and area chart breaks its lines across it', async () => {
    // A run ends before the kill and the next one starts after the restart: no line bridges the outage.
    const res = await waitFor('a break across the outage in every chart', 10000, async () => {
      const segs = await page.evaluate((ids) => Object.fromEntries(ids.map((id) => [id, window.__rtdash.segments(id)])), charts);
      const bad = [];
      let widest = Infinity;
      let example = '';
      for (const id of charts) {
        const ok = Object.values(segs[id]).some((runs) => runs.some((r, i) => {
          const next = runs[i + 1];
          // a break within the outage: the line stops before the restart and resumes after the kill
          if (!next || r[1] > restartedAt + 1500 || next[0] <= killedAt) return false;
          if (next[0] - r[1] < widest) example = `line ends ${((killedAt - r[1]) / 1000).toFixed(1)} s before the kill, resumes ${((next[0] - restartedAt) / 1000).toFixed(1)} s after the restart`;
          widest = Math.min(widest, next[0] - r[1]);
          return true;
        }));
        if (!ok) bad.push(`${id}: ${JSON.stringify(segs[id]).slice(0, 300)}`);
      }
      if (bad.length) throw new Error(`no break across the outage (${killedAt}..${restartedAt}) in ${bad.join('; ')}`);
      return [widest, example];
    }, 500);
    return `${charts.length} charts break across the ${((restartedAt - killedAt) / 1000).toFixed(1)} s outage (narrowest break ${(res[0] / 1000).toFixed(1)} s: ${res[1]})`;
  });

  await check('stat sparklines break across the outage too', async () => {
    const stats = dash.widgets.filter((w) => (w.display_config || w.display).chart === 'stat').map((w) => w.widget_id);
    await waitFor('a break across the outage in every stat sparkline', 10000, async () => {
      const segs = await page.evaluate((ids) => ids.map((id) => window.__rtdash.segments(id)[''] || []), stats);
      const bad = stats.filter((id, i) => !segs[i].some((r, k) => {
        const next = segs[i][k + 1];
        return next && r[1] <= restartedAt + 1500 && next[0] > killedAt;
      }));
      if (bad.length) throw new Error(`no break in ${bad.join(', ')}: ${JSON.stringify(segs).slice(0, 300)}`);
      return true;
    }, 500);
    return `${stats.length} stat sparklines`;
  });

  await check('SIGINT stops the server gracefully (exit code 0)', async () => {
    second.proc.kill('SIGINT');
    const { code, signal } = await waitExit(second.proc, 15000);
    if (code !== 0) throw new Error(`exit code ${code}, signal ${signal}; output:\n${second.output()}`);
    await waitFor('#status[data-status=reconnecting]', 15000, async () => (await statusOf(page)) === 'reconnecting');
  });

  await check('no JavaScript errors on the page', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  });
}

async function cleanup() {
  if (context) await context.close().catch(() => {});
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
}

await runTest('browser test', TIMEOUT_S, main, cleanup);
