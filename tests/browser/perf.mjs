// Main-thread cost of the dashboard page, measured like the browser test does
// (CDP `Performance.getMetrics`: TaskDuration delta / wall time) at 1440×1000.
//
// Run after `bash .ci/browser.sh` (it installs the browser and builds the
// example): `node tests/browser/perf.mjs [--page-rev REV] [--seconds N]`.
// `--page-rev REV` serves the page (index.html, app.js, style.css) as it was
// at git revision REV instead of the embedded one, to compare before/after
// with the same server.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, BIN, CHROMIUM } from './harness.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const REV = opt('--page-rev', null);
const SECONDS = Number(opt('--seconds', 10));
const WARMUP = Number(opt('--warmup', 15));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const server = spawn(BIN, ['--addr', '127.0.0.1:0', '--incident-after', '3600'], { stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((res, rej) => {
  let out = '';
  server.stdout.on('data', (c) => {
    out += c;
    const m = /open (http:\/\/\S+\/)/.exec(out);
    if (m) res(m[1]);
  });
  server.on('exit', () => rej(new Error(`server exited: ${out}`)));
});
const dir = mkdtempSync(join(tmpdir(), 'rtdash-perf-'));
const ctx = await chromium.launchPersistentContext(dir, {
  executablePath: CHROMIUM,
  headless: true,
  // a routed document counts as non-local for Chrome's local network checks: allow its WebSocket
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests'],
  viewport: { width: 1440, height: 1000 },
  deviceScaleFactor: 1,
});
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  if (REV) {
    const show = (p) => execFileSync('git', ['-C', ROOT, 'show', `${REV}:examples/dashboard/web/${p}`]);
    const files = { '/': ['index.html', 'text/html'], '/assets/app.js': ['app.js', 'text/javascript'], '/assets/style.css': ['style.css', 'text/css'] };
    await page.route('**/*', (route) => {
      const f = files[new URL(route.request().url()).pathname];
      if (f) return route.fulfill({ status: 200, contentType: f[1], body: show(f[0]) });
      return route.continue();
    });
  }
  page.on('console', (m) => { if (m.type() === 'error') console.error('page:', m.text()); });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('#status[data-status="live"]', { timeout: 20000 });
  await sleep(WARMUP * 1000);
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Performance.enable');
  const metric = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
  const a = await metric();
  const t0 = Date.now();
  await sleep(SECONDS * 1000);
  const b = await metric();
  const wall = (Date.now() - t0) / 1000;
  const busy = ((b.TaskDuration - a.TaskDuration) / wall) * 100;
  console.log(`page ${REV || 'embedded'}: main thread ${busy.toFixed(1)} % busy over ${wall.toFixed(1)} s; script ${(((b.ScriptDuration - a.ScriptDuration) / wall) * 100).toFixed(1)} %, ${((b.LayoutCount - a.LayoutCount) / wall).toFixed(1)} layouts/s, ${((b.RecalcStyleCount - a.RecalcStyleCount) / wall).toFixed(1)} style recalcs/s`);
} finally {
  await ctx.close();
  server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
