// What the browser tests share: settings from the environment, and Debian's Chromium started
// headless with a fresh profile and the flags this closed network needs.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export function env(k) {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
}

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// A browser with its own empty profile; `close()` removes the profile too. `extra` adds
// launch options (permissions, args appended to the common flags).
export async function launch(extra = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'eyeward-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    locale: 'en-US',
    viewport: { width: 1280, height: 800 },
    ...extra,
    args: [...FLAGS, ...(extra.args || [])],
  });
  return {
    ctx,
    async close() {
      await ctx.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// A browser that may play live video in the loopback-only namespace; added to `browsers` so
// the caller closes it.
export async function liveBrowser(browsers, args = []) {
  const b = await launch({
    viewport: { width: 1280, height: 900 },
    // With loopback as the only network, Chromium offers 127.0.0.1 candidates only to a page
    // that holds a media permission.
    permissions: ['camera', 'microphone'],
    args: ['--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required', ...args],
  });
  browsers.push(b);
  return b.ctx;
}

// Logs `page` in as `email` (PASSWORD) from the login page, the way a person does, and waits
// for `view` (the cameras page, or the console for an operator).
export async function logIn(page, email = env('EMAIL'), view = '#cameras-view') {
  await page.goto(env('BASE_URL'));
  await page.waitForSelector('#login-view:not([hidden])');
  await page.fill('#email', email);
  await page.fill('#password', env('PASSWORD'));
  await page.click('#login-submit');
  await page.waitForSelector(`${view}:not([hidden])`);
}

// Collects what goes wrong on `page` into `problems` (named by `who`): page errors, and
// console errors but the failed answers `expected` (401: the login page's own check of the
// session; a test may add 409 for a camera that has no agent).
export function collectProblems(page, problems, who = 'page', expected = /status of 401/) {
  page.on('pageerror', (e) => problems.push(`${who}: page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected.test(m.text())) problems.push(`${who}: console: ${m.text()}`);
  });
}

// Logs in (EMAIL, PASSWORD) and opens camera `camera`'s live view from the list.
export async function openCamera(ctx, camera) {
  const page = ctx.pages()[0] ?? await ctx.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await logIn(page);
  const started = Date.now();
  await page.click(`a[href="#camera/${camera}"]`);
  await page.waitForSelector('#live-view:not([hidden])');
  return { page, started };
}

// Frames decoded during `ms`, counted with requestVideoFrameCallback.
export function framesIn(page, ms) {
  return page.evaluate((ms) => new Promise((resolve) => {
    const v = document.getElementById('video');
    let n = 0;
    const tick = () => { n += 1; v.requestVideoFrameCallback(tick); };
    v.requestVideoFrameCallback(tick);
    setTimeout(() => resolve(n), ms);
  }), ms);
}

// Waits until the video has a size and its frames advance. `page` is Playwright's or
// Puppeteer's (whose waitForFunction takes its arguments in another order).
export async function waitPlaying(page, timeout) {
  const deadline = Date.now() + timeout;
  let sized = false;
  while (Date.now() < deadline) {
    sized = await page.evaluate(() => document.getElementById('video').videoWidth > 0);
    if (sized && (await framesIn(page, 1000)) >= 5) return;
    if (!sized) await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(sized ? 'frames do not advance' : 'no picture');
}

// Checks what the page shows now with axe-core (WCAG 2.1 A and AA): throws with every
// serious or critical violation. axe runs through the DevTools protocol, so the page's own
// policy (no inline or foreign scripts) stays as strict as in use.
const AXE = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'node_modules/axe-core/axe.min.js'), 'utf8');
export async function checkA11y(page, what) {
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
  if (found.length > 0) throw new Error(`accessibility of ${what}:\n${found.join('\n')}`);
}

// Keeps the page's RTCPeerConnections in `window.peerConnections`, for their statistics.
// `target` is a page or a browser context (Playwright's) or a page (Puppeteer's); call it
// before the page loads.
export async function recordPeerConnections(target) {
  const beforeLoad = target.addInitScript ? target.addInitScript.bind(target) : target.evaluateOnNewDocument.bind(target);
  await beforeLoad(() => {
    const Original = window.RTCPeerConnection;
    window.peerConnections = [];
    window.RTCPeerConnection = function (...args) {
      const pc = new Original(...args);
      window.peerConnections.push(pc);
      return pc;
    };
    window.RTCPeerConnection.prototype = Original.prototype;
  });
}

// The statistics of type `type` of the page's connected RTCPeerConnections (recorded by
// recordPeerConnections), with the codec of each (mimeType) where they name one.
export function connectedStats(page, type) {
  return page.evaluate(async (type) => {
    const out = [];
    for (const pc of window.peerConnections) {
      if (pc.connectionState !== 'connected') continue;
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type !== type) return;
        const codec = s.codecId && report.get(s.codecId);
        out.push({ kind: s.kind, mimeType: codec ? codec.mimeType : null });
      });
    }
    return out;
  }, type);
}

// The loudest pitch of what the page's video element plays over `ms` (the loudest moment:
// a camera with sync marks sounds its tone 200 ms every 2 s), and its level (dB). `page` is
// Playwright's or Puppeteer's.
export function loudest(page, ms = 2500) {
  return page.evaluate(async (ms) => {
    const v = document.getElementById('video');
    const ctx = new AudioContext();
    await ctx.resume();
    const source = ctx.createMediaStreamSource(v.srcObject);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    source.connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    let result = { hz: 0, db: -Infinity };
    const until = performance.now() + ms;
    while (performance.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      analyser.getFloatFrequencyData(bins);
      let best = 1;
      for (let i = 1; i < bins.length; i += 1) if (bins[i] > bins[best]) best = i;
      if (bins[best] > result.db) result = { hz: (best * ctx.sampleRate) / analyser.fftSize, db: bins[best] };
    }
    source.disconnect();
    await ctx.close();
    return result;
  }, ms);
}
