// What the browser tests share: where the example binary and the browser are,
// named checks with a tally, polling, starting the example on a port, axe-core
// in the page, and the run of a test script (time limit, cleanup, summary,
// exit code).
//
// Environment:
//   RTDASH_DASHBOARD_BIN  the example binary (default:
//                         $CARGO_TARGET_DIR or ./target, + release/examples/dashboard)
//   CHROMIUM              the browser (default /usr/bin/chromium)

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.RTDASH_DASHBOARD_BIN
  || join(process.env.CARGO_TARGET_DIR ? resolve(ROOT, process.env.CARGO_TARGET_DIR) : join(ROOT, 'target'), 'release', 'examples', 'dashboard');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
/** Chromium's flags on this machine's closed network (see the machine notes). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const log = (msg) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** A check failed: the run stops (later checks depend on it). */
export class CheckFailed extends Error {}

const tally = { passed: 0, failed: 0 };
const started = Date.now();

/** Runs one named check; prints `ok N - name (detail) [elapsed]`; a failure stops the run. */
export async function check(name, fn) {
  try {
    const detail = await fn();
    tally.passed++;
    console.log(`ok ${tally.passed + tally.failed} - ${name}${detail ? ` (${detail})` : ''} [${((Date.now() - started) / 1000).toFixed(1)} s]`);
  } catch (err) {
    tally.failed++;
    console.log(`not ok ${tally.passed + tally.failed} - ${name}`);
    throw new CheckFailed(`${name}: ${err && err.message ? err.message : err}`);
  }
}

/** Polls `fn` every `every` ms until it returns a truthy value or `ms` pass; returns that value. */
export async function waitFor(what, ms, fn, every = 200) {
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
      const why = last instanceof Error ? `: ${last.message}` : last !== undefined && last !== null && last !== false ? `: last ${JSON.stringify(last).slice(0, 300)}` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${why}`);
    }
    await sleep(every);
  }
}

/** The example servers started and still running (killed by `runTest`'s cleanup). */
export const servers = new Set();

/** Starts the example; resolves with {proc, url, port, output} once it prints its URL. */
export function startServer(addr, extraArgs = []) {
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

/**
 * axe-core in the page, on the whole document or the element `selector`: the serious and
 * critical violations. Evaluated through CDP (the page's CSP forbids an injected <script>,
 * rightly).
 */
export async function axeViolations(page, selector = null) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE);
  const res = await page.evaluate(async (sel) => {
    const r = await window.axe.run(sel ? document.querySelector(sel) : document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', '), n: v.nodes.length }));
  }, selector);
  return res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/**
 * Runs a test script's `main` within `timeoutS` seconds, then kills the servers it started
 * and calls its `cleanup`; prints `N passed, M failed` and exits 0 only when every check
 * passed.
 */
export async function runTest(name, timeoutS, main, cleanup) {
  const cleanAll = async () => {
    for (const p of servers) p.kill('SIGKILL');
    await cleanup();
  };
  const overall = setTimeout(async () => {
    console.error(`FAIL: the ${name} did not finish within ${timeoutS} s`);
    console.log(`${tally.passed} passed, ${tally.failed + 1} failed`);
    await cleanAll();
    process.exit(1);
  }, timeoutS * 1000);
  let code = 0;
  try {
    await main();
  } catch (err) {
    code = 1;
    if (err instanceof CheckFailed) console.error(`FAIL: ${err.message}`);
    else {
      tally.failed++;
      console.error(`FAIL: ${err && err.stack ? err.stack : err}`);
    }
  } finally {
    await cleanAll();
    clearTimeout(overall);
  }
  console.log(`${tally.passed} passed, ${tally.failed} failed`);
  process.exit(code);
}
