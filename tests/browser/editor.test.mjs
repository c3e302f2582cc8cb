// Headless-browser test of the dashboard editor of the example (issue #17).
//
// Starts `examples/dashboard` on a free port and drives the page as a person
// would (clicks and typing; the HTTP API is only read, to verify): creates a
// dashboard, adds a widget choosing its metric from the catalog, previews it,
// sees live demo values, adds an alert rule the demo crosses and sees it fire
// on the chart and in the alert history panel, edits, silences and deletes the
// rule, renames the dashboard, moves and resizes the widget (buttons, also from
// the keyboard), answers the writer-token dialog (a 401 made by the browser:
// the example runs without --jwt-secret), triggers a validation error and sees it next to its field,
// removes the widget and deletes the dashboard. The rule's webhook goes to a
// receiver this script runs (the record must say "delivered"). A second browser context shows
// the same dashboard and sees every change without a reload (new widget, rule
// line, rename, move, removal, the deleted-dashboard message). axe-core checks
// the open widget dialog. Saves docs/screenshot-editor.png (the dialog open,
// 1440×900) and docs/screenshot-alert-history.png (the history panel).
//
// Run: `bash .ci/browser.sh` (after dashboard.test.mjs), or
// `node tests/browser/editor.test.mjs` once the example is built.
//
// Environment:
//   RTDASH_DASHBOARD_BIN  the example binary (default:
//                         $CARGO_TARGET_DIR or ./target, + release/examples/dashboard)
//   CHROMIUM              the browser (default /usr/bin/chromium)
//   RTDASH_TEST_TIMEOUT_S overall time limit in seconds (default 150)
//   RTDASH_SHOTS_DIR      where to save the screenshots (default docs/)

import { createServer } from 'node:http';
import { mkdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import {
  ROOT, BIN, CHROMIUM, CHROMIUM_ARGS, sleep, log, CheckFailed, check, waitFor as waitEvery,
  startServer, axeViolations, runTest,
} from './harness.mjs';

const SHOTS = resolve(ROOT, process.env.RTDASH_SHOTS_DIR || 'docs');
const TIMEOUT_S = Number(process.env.RTDASH_TEST_TIMEOUT_S || 150);
const DASH = 'editor-test';
const METRIC = 'http.requests.rate.all';
// the rule's webhook: a receiver in this script (127.0.0.1, a free port)
let HOOK = '';
const hookBodies = [];

let browser = null;
let receiver = null;

/** The harness's polling, every 150 ms by default here. */
const waitFor = (what, ms, fn, every = 150) => waitEvery(what, ms, fn, every);

async function main() {
  if (!existsSync(BIN)) throw new CheckFailed(`no binary at ${BIN}: run \`cargo build --release --example dashboard\` or set RTDASH_DASHBOARD_BIN`);
  if (!existsSync(CHROMIUM)) throw new CheckFailed(`no browser at ${CHROMIUM}: \`apt-get install -y chromium\` or set CHROMIUM`);

  let server;
  await check('the example starts on port 0', async () => {
    // no demo incident during the test: the alerts seen are the test's own
    server = await startServer('127.0.0.1:0', ['--incident-after', '3600']);
    return server.url;
  });
  const { url } = server;
  const api = async (path, init) => {
    const res = await fetch(new URL(path, url), init);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const doc = async () => {
    const r = await api(`/dashboards/${DASH}`);
    return r.status === 200 ? r.body.dashboard || r.body : null;
  };

  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      hookBodies.push(body);
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  HOOK = `http://127.0.0.1:${receiver.address().port}/rtdash-hook`;

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const ctxA = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1, colorScheme: 'dark' });
  const ctxB = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1, colorScheme: 'dark' });
  const a = await ctxA.newPage();
  const b = await ctxB.newPage();
  const pageErrors = [];
  for (const [name, p] of [['A', a], ['B', b]]) {
    p.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`));
    p.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource|WebSocket connection/.test(m.text())) pageErrors.push(`${name}: ${m.text()}`);
    });
  }
  const live = (p) => waitFor('status live', 20000, async () => (await p.getAttribute('#status', 'data-status')) === 'live');
  const widgetIds = (p) => p.$$eval('section.widget[data-widget-id]', (els) => els.map((e) => e.dataset.widgetId));

  await check('page A opens the seeded dashboard and lists it in the dashboard picker', async () => {
    await a.goto(url, { waitUntil: 'load' });
    await live(a);
    const opts = await waitFor('the dashboard list', 5000, async () => {
      const o = await a.$$eval('#dashboard-select option', (os) => os.map((x) => x.value));
      return o.includes('ops') ? o : null;
    });
    return `options ${opts.join(', ')}`;
  });

  await check('create a dashboard (id + name) from the Dashboards dialog; the URL names it', async () => {
    await a.click('#manage-dashboards');
    await a.fill('#create-id', DASH);
    await a.fill('#create-name', 'Editor test');
    await a.click('#create-form button[type=submit]');
    await waitFor('?dashboard= in the URL', 5000, async () => new URL(a.url()).searchParams.get('dashboard') === DASH);
    await waitFor('the new name in the header', 5000, async () => (await a.textContent('#dashboard-name')) === 'Editor test');
    await live(a);
    const d = await doc();
    if (!d || d.name !== 'Editor test') throw new Error(`GET /dashboards/${DASH}: ${JSON.stringify(d)}`);
    const sel = await a.$eval('#dashboard-select', (s) => s.value);
    if (sel !== DASH) throw new Error(`the picker shows ${sel}`);
    return a.url();
  });

  await check('page B (another browser context) shows the same dashboard', async () => {
    await b.goto(new URL(`/?dashboard=${DASH}`, url).href, { waitUntil: 'load' });
    await live(b);
    return await b.textContent('#dashboard-name');
  });

  await check('edit mode: the Edit toggle shows "Add widget"; view mode hides the edit controls', async () => {
    if (await a.isVisible('#add-widget')) throw new Error('Add widget is shown in view mode');
    await a.click('#edit-toggle');
    await a.waitForSelector('#add-widget', { state: 'visible', timeout: 3000 });
    const pressed = await a.getAttribute('#edit-toggle', 'aria-pressed');
    if (pressed !== 'true') throw new Error(`aria-pressed ${pressed}`);
  });

  let widgetId;
  await check('add a widget: the metric is chosen from the catalog list, Preview shows its value', async () => {
    await a.click('#add-widget');
    await a.waitForSelector('#widget-dialog[open]', { timeout: 3000 });
    const n = await waitFor('the catalog in the metric picker', 10000, async () => {
      const c = await a.getAttribute('#widget-dialog', 'data-catalog');
      if (c === 'unavailable') throw new Error('GET /catalog failed');
      const has = await a.$$eval('#wf-metric option', (os, m) => os.some((o) => o.value === m), METRIC);
      return c && has ? c : null;
    });
    await a.fill('#wf-title', 'Requests');
    await a.selectOption('#wf-metric', METRIC);
    await a.selectOption('#wf-agg', 'avg');
    await a.fill('#wf-window', '5');
    await a.fill('#wf-refresh', '1');
    await a.selectOption('#wf-chart', 'line');
    await a.fill('#wf-unit', 'req/s');
    await a.click('#wf-preview-btn');
    const text = await waitFor('a preview value', 8000, async () => {
      const st = await a.getAttribute('#wf-preview', 'data-state');
      if (st === 'error') throw new Error(await a.textContent('#wf-preview'));
      return st === 'ok' ? a.textContent('#wf-preview') : null;
    });
    if (!/\d/.test(text)) throw new Error(`preview "${text}" has no number`);
    return `${n} metrics in the catalog; ${text}`;
  });

  await check('the widget dialog passes axe-core in both themes (no serious or critical violation); screenshot saved', async () => {
    for (const scheme of ['light', 'dark']) {
      await a.emulateMedia({ colorScheme: scheme });
      const bad = await axeViolations(a, '#widget-dialog');
      if (bad.length) throw new Error(`axe (${scheme}): ${bad.map((v) => `${v.id} (${v.impact}, ${v.n}: ${v.nodes})`).join('; ')}`);
    }
    mkdirSync(SHOTS, { recursive: true });
    const shot = join(SHOTS, 'screenshot-editor.png');
    await a.screenshot({ path: shot });
    return shot.slice(ROOT.length + 1);
  });

  await check('a validation error from the API shows next to its field (aria-invalid, aria-describedby)', async () => {
    await a.fill('#wf-window', '0');
    await a.click('#wf-save');
    const msg = await waitFor('the window field marked invalid', 5000, async () => {
      const inv = await a.getAttribute('#wf-window', 'aria-invalid');
      const desc = (await a.getAttribute('#wf-window', 'aria-describedby')) || '';
      const visible = await a.isVisible('#wf-window-error');
      return inv === 'true' && desc.includes('wf-window-error') && visible ? a.textContent('#wf-window-error') : null;
    });
    const err = await a.evaluate(() => window.__rtdash.lastError());
    if (!err || !err.violations.some((v) => /window_seconds$/.test(v.path))) throw new Error(`last error ${JSON.stringify(err)}`);
    if (!(await a.isVisible('#widget-dialog[open]'))) throw new Error('the dialog closed');
    const focused = await a.evaluate(() => document.activeElement.id);
    return `"${msg.trim()}" (${err.violations.map((v) => v.path).join(', ')}); focus on #${focused}`;
  });

  await check('saving adds the widget: it shows live demo values; the API has it', async () => {
    await a.fill('#wf-window', '5');
    await a.click('#wf-save');
    await a.waitForSelector('#widget-dialog', { state: 'hidden', timeout: 5000 });
    const d = await doc();
    if (!d || d.widgets.length !== 1) throw new Error(`the dashboard has ${d && d.widgets.length} widgets`);
    widgetId = d.widgets[0].widget_id;
    if (d.widgets[0].metric_name !== METRIC) throw new Error(`metric ${d.widgets[0].metric_name}`);
    const sel = `section.widget[data-widget-id="${widgetId}"]`;
    const v1 = await waitFor('a live value', 15000, async () => {
      const e = await a.$(sel);
      if (!e) return null;
      const [v, stale] = await Promise.all([e.getAttribute('data-value'), e.getAttribute('data-stale')]);
      return v && v !== 'null' && stale === 'false' ? v : null;
    });
    const v2 = await waitFor('the value to change', 15000, async () => {
      const v = await a.getAttribute(sel, 'data-value');
      return v && v !== v1 ? v : null;
    });
    return `${widgetId}: ${v1} → ${v2}`;
  });

  await check('page B shows the new widget with values, without a reload', async () => {
    const v = await waitFor('the widget on B', 10000, async () => {
      const e = await b.$(`section.widget[data-widget-id="${widgetId}"]`);
      const val = e && (await e.getAttribute('data-value'));
      return val && val !== 'null' ? val : null;
    });
    const ids = await widgetIds(b);
    if (ids.length !== 1) throw new Error(`B has ${ids.length} widgets`);
    if (await b.isVisible('#add-widget')) throw new Error('B (view mode) shows Add widget');
    return `value ${v}`;
  });

  const bar = (action) => `section.widget[data-widget-id="${widgetId}"] .edit-bar [data-action="${action}"]`;
  // the move and resize buttons show while the widget is hovered (or holds the focus)
  const clickBar = async (action) => {
    await a.hover(`section.widget[data-widget-id="${widgetId}"] .widget-title`);
    await a.click(bar(action));
  };
  let ruleId = '';
  const r0rule = () => ruleId;
  const rules = async () => ((await api(`/dashboards/${DASH}/alert-rules`)).body.alert_rules || []);

  await check('an alert rule above 0 (the demo crosses it) is added from the widget\'s Alerts dialog', async () => {
    await a.click(bar('alerts'));
    await a.waitForSelector('#rules-dialog[open]', { timeout: 3000 });
    await a.fill('#rf-name', 'Requests flowing');
    await a.selectOption('#rf-severity', 'critical');
    await a.selectOption('#rf-condition', 'above');
    await a.fill('#rf-threshold', '0');
    await a.fill('#rf-for', '0');
    await a.fill('#rf-webhooks', HOOK);
    await a.click('#rf-save');
    await waitFor('the rule in the dialog', 5000, async () => (await a.$$('#rules-list li.rule')).length === 1);
    const r = await rules();
    if (r.length !== 1 || r[0].threshold !== 0 || r[0].widget_id !== widgetId) throw new Error(JSON.stringify(r));
    if (r[0].severity !== 'critical') throw new Error(`severity ${r[0].severity}`);
    if (JSON.stringify(r[0].webhooks) !== JSON.stringify([HOOK])) throw new Error(`webhooks ${JSON.stringify(r[0].webhooks)}`);
    ruleId = r[0].id;
    await a.keyboard.press('Escape');
    await a.waitForSelector('#rules-dialog', { state: 'hidden', timeout: 3000 });
    return `${r[0].name}: ${r[0].condition} ${r[0].threshold}, severity ${r[0].severity}`;
  });

  await check('page B draws the rule\'s threshold line without a reload', async () => {
    const t = await waitFor('threshold 0 on B', 10000, async () => {
      const v = await b.evaluate((id) => window.__rtdash.thresholds(id), widgetId);
      return v.includes(0) ? v : null;
    });
    return `thresholds ${JSON.stringify(t)}`;
  });

  await check('the alert fires: the widget is shaded and badged on both pages', async () => {
    const res = await waitFor('a firing alert on the widget', 15000, async () => {
      const sp = await a.evaluate((id) => window.__rtdash.alertSpans(id), widgetId);
      const badge = await a.isVisible(`section.widget[data-widget-id="${widgetId}"] .badge-alert`);
      return sp.length && badge ? sp : null;
    });
    await waitFor('the alert on B', 10000, async () => (await b.$$(`section.widget.alerting[data-widget-id="${widgetId}"]`)).length === 1);
    return `${res.length} shaded span(s)`;
  });

  await check('the alert history panel lists the record (rule, severity, value, start, firing)', async () => {
    const text = await waitFor('a record in the history panel', 10000, async () => {
      const t = await a.$$eval('#history-list li[data-seq]', (els) => els.map((e) => e.textContent));
      return t.find((x) => x.includes('Requests flowing')) || null;
    });
    if (!/critical/.test(text)) throw new Error(`no severity in "${text}"`);
    const hook = await waitFor('the webhook delivered, in the record', 10000, async () => {
      const t = await a.$$eval('#history-list li[data-seq] .hist-hook', (els) => els.map((e) => e.textContent));
      return t.find((x) => x.includes(new URL(HOOK).host) && /delivered/.test(x)) || null;
    });
    if (!hookBodies.some((x) => x.includes(r0rule()))) throw new Error(`the receiver got ${JSON.stringify(hookBodies).slice(0, 300)}`);
    const rec = await a.$eval('#history-list li[data-seq]', (e) => e.textContent);
    if (!/firing/.test(rec)) throw new Error(`the newest record "${rec}" is not firing`);
    const h = await api(`/dashboards/${DASH}/alert-history`);
    if (h.status !== 200 || !h.body.records.length) throw new Error(`GET alert-history: ${h.status} ${JSON.stringify(h.body).slice(0, 200)}`);
    return `"${text.replace(/\s+/g, ' ').trim().slice(0, 120)}"; "${hook}"; ${hookBodies.length} POST(s) received`;
  });

  await check('the history filters narrow the list (state=resolved shows no firing record)', async () => {
    await a.selectOption('#history-state', 'resolved');
    await waitFor('the filtered list', 5000, async () => {
      const states = await a.$$eval('#history-list li[data-seq]', (els) => els.map((e) => e.dataset.state));
      const empty = await a.$$eval('#history-list li.empty', (els) => els.length);
      return (states.length && states.every((s) => s === 'resolved')) || (!states.length && empty) ? true : null;
    });
    await a.selectOption('#history-state', '');
    await waitFor('the full list', 5000, async () => (await a.$$('#history-list li[data-seq]')).length > 0);
  });

  await check('edit the rule: the threshold changes in the API and the line moves on page B', async () => {
    await a.click(bar('alerts'));
    await a.waitForSelector('#rules-dialog[open]', { timeout: 3000 });
    await a.click('#rules-list li.rule [data-action="edit-rule"]');
    const name = await a.inputValue('#rf-name');
    if (name !== 'Requests flowing') throw new Error(`the form shows "${name}"`);
    await a.fill('#rf-threshold', '1000000');
    await a.click('#rf-save');
    await waitFor('the new threshold in the API', 5000, async () => (await rules())[0].threshold === 1000000);
    await waitFor('the new line on B', 10000, async () => {
      const v = await b.evaluate((id) => window.__rtdash.thresholds(id), widgetId);
      return v.includes(1000000) && !v.includes(0);
    });
  });

  await check('the alert resolves under the new threshold: the history record gets its end and duration; screenshot saved', async () => {
    try {
      await waitFor('the widget no longer alerting', 15000, async () => (await a.$$(`section.widget.alerting[data-widget-id="${widgetId}"]`)).length === 0);
    } catch (err) {
      const firing = (await api(`/dashboards/${DASH}/alerts`)).body;
      const list = await a.$$eval('#alert-list li', (els) => els.map((e) => e.textContent));
      throw new Error(`${err.message}; API alerts ${JSON.stringify(firing).slice(0, 1500)}; page list ${JSON.stringify(list)}`);
    }
    const text = await waitFor('a resolved record', 10000, async () => {
      const li = await a.$('#history-list li[data-seq][data-state="resolved"]');
      return li ? li.textContent() : null;
    });
    if (!/→/.test(text) || !/\d+ s/.test(text)) throw new Error(`no end or duration in "${text}"`);
    const rec = (await api(`/dashboards/${DASH}/alert-history?state=resolved`)).body.records[0];
    if (!rec || !rec.ended_at || rec.duration_ms === null) throw new Error(`API record ${JSON.stringify(rec)}`);
    await a.keyboard.press('Escape');
    await a.waitForSelector('#rules-dialog', { state: 'hidden', timeout: 3000 });
    const shot = join(SHOTS, 'screenshot-alert-history.png');
    await a.screenshot({ path: shot });
    await a.click(bar('alerts'));
    await a.waitForSelector('#rules-dialog[open]', { timeout: 3000 });
    return `"${text.replace(/\s+/g, ' ').trim().slice(0, 120)}"; ${shot.slice(ROOT.length + 1)}`;
  });

  await check('silence the rule for 15 min, then unsilence it', async () => {
    await a.click('#rules-list li.rule [data-action^="silence-"]');
    const until = await waitFor('silenced_until in the API', 5000, async () => (await rules())[0].silenced_until || null);
    if (until < Date.now() + 14 * 60 * 1000) throw new Error(`silenced until ${until}`);
    await a.waitForSelector('#rules-list li.rule [data-action="unsilence"]', { timeout: 3000 });
    await a.click('#rules-list li.rule [data-action="unsilence"]');
    await waitFor('no silenced_until in the API', 5000, async () => !(await rules())[0].silenced_until);
    return `silenced until ${new Date(until).toISOString()}`;
  });

  await check('delete the rule: gone from the API and from page B\'s chart', async () => {
    await a.click('#rules-list li.rule [data-action="delete-rule"]');
    await waitFor('no rule in the API', 5000, async () => (await rules()).length === 0);
    await waitFor('no rule line on B', 10000, async () => !(await b.evaluate((id) => window.__rtdash.thresholds(id), widgetId)).includes(1000000));
    await a.keyboard.press('Escape');
    await a.waitForSelector('#rules-dialog', { state: 'hidden', timeout: 3000 });
  });

  await check('rename the dashboard: the API and page B show the new name', async () => {
    await a.click('#manage-dashboards');
    await a.fill('#rename-name', 'Editor test (renamed)');
    await a.click('#rename-form button[type=submit]');
    await waitFor('the new name in the API', 5000, async () => (await doc()).name === 'Editor test (renamed)');
    await a.keyboard.press('Escape');
    await waitFor('the new name on B', 10000, async () => (await b.textContent('#dashboard-name')) === 'Editor test (renamed)');
    await waitFor('the new name on A', 3000, async () => (await a.textContent('#dashboard-name')) === 'Editor test (renamed)');
  });

  const pos = async () => (await doc()).widgets.find((w) => w.widget_id === widgetId).display_config.position;
  const gridColumnOn = (p) => p.$eval(`section.widget[data-widget-id="${widgetId}"]`, (e) => e.style.gridColumn);

  await check('writer token: a change answered 401 asks for a token in a dialog, retries with it, keeps it in sessionStorage', async () => {
    // the example runs without --jwt-secret (all writes open): the 401 is the browser's
    const sent = [];
    const handler = async (route) => {
      const req = route.request();
      if (req.method() === 'GET') return route.continue();
      const auth = req.headers().authorization || '';
      sent.push(auth);
      if (auth !== 'Bearer test-writer-token') {
        return route.fulfill({ status: 401, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unauthorized', message: 'a writer token is required' } }) });
      }
      return route.continue();
    };
    await a.route(`${url}dashboards/**`, handler);
    try {
      const p0 = await pos();
      await clickBar('down');
      await a.waitForSelector('#token-dialog[open]', { timeout: 3000 });
      await a.fill('#token-input', 'test-writer-token');
      await a.click('#token-form button[type=submit]');
      await waitFor('y + 1 in the API', 5000, async () => (await pos()).y === p0.y + 1);
      const kept = await a.evaluate(() => sessionStorage.getItem('rtdash.writerToken'));
      if (kept !== 'test-writer-token') throw new Error(`sessionStorage has ${kept}`);
      if (sent.length < 2 || sent[sent.length - 1] !== 'Bearer test-writer-token') throw new Error(`sent ${JSON.stringify(sent)}`);
      return `sent ${sent.map((x) => x.slice(7, 17)).join(', ')}`;
    } finally {
      await a.unroute(`${url}dashboards/**`, handler);
    }
  });

  await check('move right (a click) and down (Enter on the focused button); page B follows', async () => {
    const p0 = await pos();
    await clickBar('right');
    await waitFor('x + 1 in the API', 5000, async () => (await pos()).x === p0.x + 1);
    await a.mouse.move(0, 0);
    await a.focus(bar('edit')); // the widget holds the focus: its whole bar shows
    await a.focus(bar('down'));
    await a.keyboard.press('Enter');
    await waitFor('y + 1 in the API', 5000, async () => (await pos()).y === p0.y + 1);
    const focus = await a.evaluate(() => document.activeElement && document.activeElement.dataset.action);
    if (focus !== 'down') throw new Error(`the focus moved to ${focus}`);
    const p1 = await pos();
    await waitFor('the new column on B', 10000, async () => (await gridColumnOn(b)).startsWith(`${p1.x + 1} `));
    return `(${p0.x},${p0.y}) → (${p1.x},${p1.y}); focus stays on the button`;
  });

  await check('resize: wider and taller, then narrower; page B follows', async () => {
    const p0 = await pos();
    await clickBar('wider');
    await waitFor('w + 1 in the API', 5000, async () => (await pos()).w === p0.w + 1);
    await clickBar('taller');
    await waitFor('h + 1 in the API', 5000, async () => (await pos()).h === p0.h + 1);
    await clickBar('narrower');
    await waitFor('w back in the API', 5000, async () => (await pos()).w === p0.w);
    const p1 = await pos();
    await waitFor('the new size on B', 10000, async () => {
      const row = await b.$eval(`section.widget[data-widget-id="${widgetId}"]`, (e) => e.style.gridRow);
      return row.endsWith(`span ${p1.h}`);
    });
    return `${p0.w}×${p0.h} → ${p1.w}×${p1.h}`;
  });

  await check('the moved widget kept its chart history (the view is kept, not rebuilt)', async () => {
    const n = await a.evaluate((id) => window.__rtdash.points(id), widgetId);
    if (n < 3) throw new Error(`${n} points`);
    return `${n} points`;
  });

  await check('edit the widget: a new title shows on page B', async () => {
    await a.click(bar('edit'));
    await a.waitForSelector('#widget-dialog[open]', { timeout: 3000 });
    const m = await a.$eval('#wf-metric', (s) => s.value);
    if (m !== METRIC) throw new Error(`the metric picker shows ${m}`);
    await a.fill('#wf-title', 'Requests per second');
    await a.click('#wf-save');
    await a.waitForSelector('#widget-dialog', { state: 'hidden', timeout: 5000 });
    await waitFor('the title on B', 10000, async () => (await b.textContent(`section.widget[data-widget-id="${widgetId}"] .widget-title`)) === 'Requests per second');
  });

  await check('remove the widget: gone from the API and from page B', async () => {
    await a.click(bar('remove'));
    await waitFor('no widget in the API', 5000, async () => (await doc()).widgets.length === 0);
    await waitFor('no widget on B', 10000, async () => (await widgetIds(b)).length === 0);
  });

  await check('delete the dashboard (with a confirm step): A shows another one, B says it was deleted', async () => {
    await a.click('#manage-dashboards');
    await a.click('#delete-dashboard');
    await a.waitForSelector('#delete-confirm', { state: 'visible', timeout: 2000 });
    if ((await doc()) === null) throw new Error('deleted before the confirmation');
    await a.click('#delete-confirm-yes');
    await waitFor('a 404 from the API', 5000, async () => (await api(`/dashboards/${DASH}`)).status === 404);
    await waitFor('A on another dashboard', 10000, async () => (await a.evaluate(() => window.__rtdash.dashboardId())) !== DASH);
    await live(a);
    const msg = await waitFor('the deleted message on B', 10000, async () => {
      const e = await b.$('#grid .fatal.gone');
      return e ? e.textContent() : null;
    });
    const shown = await a.evaluate(() => window.__rtdash.dashboardId());
    return `A shows "${shown}"; B: "${msg}"`;
  });

  await check('no JavaScript errors on either page', async () => {
    if (pageErrors.length) throw new Error(pageErrors.join('\n'));
  });
}

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  if (receiver) receiver.close();
}

await runTest('editor test', TIMEOUT_S, main, cleanup);
