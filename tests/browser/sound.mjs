// A camera's sound in Chromium: silent until Listen is pressed, then the simulator's 880 Hz
// tone, its pitch measured in the page with WebAudio, in step with the pictures (the
// simulator's sync marks: a white square and the tone together), for an AAC camera behind its agent
// (transcoded to Opus) and a G.711 camera read directly (passed through); a Speex camera's
// view says why it has no sound and plays on; another customer's session is 404.
// Run by tests/browser_sound.rs inside a loopback-only network namespace.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  env, liveBrowser, logIn, waitPlaying, framesIn, collectProblems, recordPeerConnections, connectedStats,
  loudest,
} from './common.mjs';

const OUT = env('OUT_DIR');
const TONE_HZ = 880;
mkdirSync(OUT, { recursive: true });
const browsers = [];
const problems = [];

// How much later the cameras' sync marks are heard than seen, in ms, for each of `marks`
// marks: the picture's mark (the top-left square turning white) when its frame is shown
// (requestVideoFrameCallback's expectedDisplayTime), the tone's onset when it is played
// (the analyser's samples, placed on the page's clock by getOutputTimestamp).
function soundAfterPicture(page, marks = 4) {
  return page.evaluate(async (marks) => {
    const v = document.getElementById('video');
    const canvas = document.createElement('canvas');
    canvas.width = 32;
    canvas.height = 18;
    const draw = canvas.getContext('2d', { willReadFrequently: true });
    const seen = [];
    let bright = null;
    const frame = (_, meta) => {
      draw.drawImage(v, 0, 0, 32, 18);
      const now = draw.getImageData(1, 1, 1, 1).data[0] > 128;
      if (now && bright === false) seen.push(meta.expectedDisplayTime);
      bright = now;
      if (seen.length < marks + 1) v.requestVideoFrameCallback(frame);
    };
    v.requestVideoFrameCallback(frame);
    const ctx = new AudioContext();
    await ctx.resume();
    const source = ctx.createMediaStreamSource(v.srcObject);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const heard = [];
    let loud = null;
    const until = performance.now() + (marks + 2) * 2000;
    while (performance.now() < until && seen.length < marks + 1) {
      await new Promise((r) => setTimeout(r, 4));
      analyser.getFloatTimeDomainData(samples);
      const stamp = ctx.getOutputTimestamp();
      const first = samples.findIndex((x) => Math.abs(x) > 0.05);
      const now = first >= 0;
      if (now && loud === false) {
        // The onset's sample, on the context's clock, then on the page's.
        const at = ctx.currentTime - (samples.length - first) / ctx.sampleRate;
        heard.push(stamp.performanceTime + (at - stamp.contextTime) * 1000);
      }
      loud = now && samples.slice(-64).some((x) => Math.abs(x) > 0.05);
    }
    source.disconnect();
    await ctx.close();
    // Each mark seen, with the onset heard nearest to it.
    return seen.map((s) => {
      const near = heard.reduce((best, h) => (Math.abs(h - s) < Math.abs(best - s) ? h : best), Infinity);
      return Math.round(near - s);
    }).filter((d) => Math.abs(d) < 1000);
  }, marks);
}

async function pressListen(page) {
  await page.click('#listen');
  await page.waitForFunction(() => document.getElementById('listen').getAttribute('aria-pressed') === 'true'
    || document.getElementById('listen-status').textContent.startsWith('No sound'), null, { timeout: 20_000 });
}

// Opens `camera` from the list, checks it is silent, presses Listen and measures the tone,
// then how far the sound is from the pictures: every mark within `bound` ms, and once the
// browser has had `settle` marks to catch up, their median within 100 ms.
async function hear(page, camera, what, bound, settle = 0) {
  await page.click(`a[href="#camera/${camera}"]`);
  await page.waitForSelector('#live-view:not([hidden])');
  await waitPlaying(page, 20_000);
  const before = await loudest(page, 1000);
  assert.ok(before.db < -90, `${what}: silent before Listen, got ${JSON.stringify(before)}`);
  const pressed = Date.now();
  await pressListen(page);
  assert.equal(await page.textContent('#listen-status'), '', `${what}: no error`);
  assert.equal(await page.textContent('#listen'), 'Listening');
  assert.equal(await page.evaluate(() => document.getElementById('video').muted), false);
  // The tone comes within a few seconds of the press.
  let heard = null;
  while (Date.now() - pressed < 15_000) {
    heard = await loudest(page);
    if (heard.db > -60 && Math.abs(heard.hz - TONE_HZ) < 20) break;
  }
  assert.ok(heard.db > -60 && Math.abs(heard.hz - TONE_HZ) < 20, `${what}: heard ${JSON.stringify(heard)}`);
  const heardMs = Date.now() - pressed;
  // Sound and pictures in step: each mark heard within 100 ms of when it is seen.
  const offsets = await soundAfterPicture(page, 10);
  assert.ok(offsets.length >= 8, `${what}: marks measured ${JSON.stringify(offsets)}`);
  assert.ok(offsets.every((d) => Math.abs(d) <= bound), `${what}: sound after pictures ${JSON.stringify(offsets)} ms`);
  const settled = offsets.slice(settle).map(Math.abs).sort((a, b) => a - b);
  assert.ok(settled[Math.floor(settled.length / 2)] <= 100, `${what}: settled ${JSON.stringify(offsets)} ms`);
  // The browser has the relay's sender reports of both streams, which it syncs them by.
  const reports = (await connectedStats(page, 'remote-outbound-rtp')).map((s) => s.kind).sort();
  assert.deepEqual(reports, ['audio', 'video'], `${what}: sender reports`);
  await page.screenshot({ path: join(OUT, `${what}.png`) });
  // Pressed again, the sound stops.
  await page.click('#listen');
  await page.waitForFunction(() => document.getElementById('listen').getAttribute('aria-pressed') === 'false');
  assert.equal(await page.evaluate(() => document.getElementById('video').muted), true);
  await page.evaluate(() => { location.hash = ''; });
  await page.waitForSelector('#cameras-view:not([hidden])');
  return { hz: Math.round(heard.hz), db: Math.round(heard.db), heardMs, soundAfterPictureMs: offsets };
}

try {
  const ctx = await liveBrowser(browsers);
  const page = ctx.pages()[0] ?? await ctx.newPage();
  // The 409 of the Speex camera's sound and the 404s this test asks for are expected.
  collectProblems(page, problems, 'page', /status of (401|404|409)/);
  await recordPeerConnections(page);
  await logIn(page);
  // G.711 passed through: in step within 100 ms from the first mark. AAC transcoded: a camera's
  // AAC encoder holds about 190 ms of sound (three frames at 16 kHz), so the sound comes about
  // 200 ms after the pictures at first, and the browser, told so by the sender reports,
  // slows the pictures to it (at most 100 ms a second: Chrome's rule): in step within 100 ms
  // from about the fifth mark (10 s) on.
  const aac = await hear(page, env('AAC_CAMERA'), 'aac-through-agent', 300, 5);
  const pcmu = await hear(page, env('PCMU_CAMERA'), 'pcmu-direct', 100);

  // A camera whose sound the relay cannot decode: the view says so and its video plays on.
  await page.click(`a[href="#camera/${env('SPEEX_CAMERA')}"]`);
  await waitPlaying(page, 20_000);
  await pressListen(page);
  const why = await page.textContent('#listen-status');
  assert.match(why, /^No sound: the camera's sound is speex/);
  assert.equal(await page.getAttribute('#listen', 'aria-pressed'), 'false');
  assert.equal(await page.evaluate(() => document.getElementById('video').muted), true);
  assert.ok((await framesIn(page, 1000)) >= 5, 'the video plays on');
  await page.screenshot({ path: join(OUT, 'speex.png') });

  // Another customer's camera, or a session that is not this viewer's: 404.
  const status = (camera, session) => page.evaluate(async ([camera, session]) => (await fetch(
    `/api/cameras/${camera}/whep/${session}/sound`,
    { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"listen":true}' },
  )).status, [camera, session]);
  assert.equal(await status(env('FOREIGN_CAMERA'), 'ab'.repeat(16)), 404);
  assert.equal(await status(env('PCMU_CAMERA'), 'ab'.repeat(16)), 404);
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, aac, pcmu, speex: why }));
} finally {
  for (const b of browsers) await b.close();
}
