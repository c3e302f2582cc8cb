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

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.RTDASH_DASHBOARD_BIN
  || join(process.env.CARGO_TARGET_DIR ? resolve(ROOT, process.env.CARGO_TARGET_DIR) : join(ROOT, 'target'), 'release', 'examples', 'dashboard');
const SCREENSHOT = resolve(ROOT, process.env.RTDASH_SCREENSHOT || 'docs/screenshot.png');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_S = Number(process.env.RTDASH_TEST_TIMEOUT_S || 240);
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let passed = 0;
let failed = 0;
const servers = new Set();
let context = null;
let userDataDir = null;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

class CheckFailed extends Error {}

/** Runs one named check; a failure stops the run (later checks depend on it). */
async function check(name, fn) {
  try {
    const detail = await fn();
    passed++;
    console.log(`ok ${passed + failed} - ${name}${detail ? ` (${detail})` : ''}`);
  } catch (err) {
    failed++;
    console.log(`not ok ${passed + failed} - ${name}`);
    throw new CheckFailed(`${name}: ${err && err.message ? err.message : err}`);
  }
}

/** Polls `fn` until it returns a truthy value or `ms` pass; returns that value. */
async function waitFor(what, ms, fn, every = 200) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) {
      const why = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${why}`);
    }
    await sleep(every);
  }
}

/** Starts the example; resolves with {proc, url, port} once it prints its URL. */
function startServer(addr, extraArgs = []) {
  return new Promise((resolveStart, rejectStart) => {
    const args = ['--addr', addr, ...extraArgs];
    log(`starting ${BIN} ${args.join(' ')}`);
    const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' } });
    servers.add(proc);
    let out = '';
    let settled = false;
    const timer = setTimeout(() => finish(new Error(`no URL printed within 30 s; output so far:\n${out}`)), 30000);
    function finish(err, value) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        proc.kill('SIGKILL');
        rejectStart(err);
      } else resolveStart(value);
    }
    const onData = (chunk) => {
      out += chunk.toString();
      if (out.length > 20000) out = out.slice(-20000);
      const m = /rtdash dashboard: open (http:\/\/[^\s/]+:(\d+)\/)/.exec(out);
      if (m) finish(null, { proc, url: m[1], port: Number(m[2]), output: () => out });
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (c) => {
      out += c.toString();
      if (out.length > 20000) out = out.slice(-20000);
    });
    proc.on('error', (err) => finish(new Error(`cannot start ${BIN}: ${err.message}`)));
    proc.on('exit', (code, signal) => {
      servers.delete(proc);
      proc.exited = { code, signal };
      finish(new Error(`server exited early (code ${code}, signal ${signal}); output:\n${out}`));
    });
  });
}

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
    return text.slice(0, 80);
  });

  await check('a screenshot of the live dashboard is saved', async () => {
    await sleep(2000); // a little more history in the charts
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    return SCREENSHOT;
  });

  // History: the server has been up for the checks above; top up to 30 s if needed.
  const charts = dash.widgets
    .filter((w) => ['line', 'area'].includes((w.display_config || w.display).chart))
    .map((w) => w.widget_id);
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

  await check('killing the server turns the status to reconnecting and marks values stale', async () => {
    server.proc.kill('SIGKILL');
    await waitExit(server.proc, 10000);
    await waitFor('#status[data-status=reconnecting]', 15000, async () => (await statusOf(page)) === 'reconnecting');
    await waitFor('every widget marked stale', 5000, async () => Object.values(await valuesOf(page)).every((x) => x.stale === 'true'));
    if (await page.isHidden('#conn-banner')) throw new Error('no visible "connection lost" banner');
  });

  let second;
  await check('restarting the server on the same port brings the status back to live', async () => {
    await sleep(1000);
    second = await restartOnPort(port, ['--incident-after', '3600']);
    const t0 = Date.now();
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
  for (const p of servers) p.kill('SIGKILL');
  if (context) await context.close().catch(() => {});
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
}

const overall = setTimeout(async () => {
  console.error(`FAIL: the browser test did not finish within ${TIMEOUT_S} s`);
  console.log(`${passed} passed, ${failed + 1} failed`);
  await cleanup();
  process.exit(1);
}, TIMEOUT_S * 1000);

let code = 0;
try {
  await main();
} catch (err) {
  code = 1;
  if (err instanceof CheckFailed) console.error(`FAIL: ${err.message}`);
  else {
    failed++;
    console.error(`FAIL: ${err && err.stack ? err.stack : err}`);
  }
} finally {
  await cleanup();
  clearTimeout(overall);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(code);
