// A camera's sound in Chromium: silent until Listen is pressed, then the simulator's 880 Hz
// tone, its pitch measured in the page with WebAudio, for an AAC camera behind its agent
// (transcoded to Opus) and a G.711 camera read directly (passed through); a Speex camera's
// view says why it has no sound and plays on; another customer's session is 404.
// Run by tests/browser_sound.rs inside a loopback-only network namespace.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { env, liveBrowser, logIn, waitPlaying, framesIn, collectProblems } from './common.mjs';

const OUT = env('OUT_DIR');
const TONE_HZ = 880;
mkdirSync(OUT, { recursive: true });
const browsers = [];
const problems = [];

// The loudest pitch of what the page's video element plays, over `ms`, and its level (dB).
function loudest(page, ms = 1500) {
  return page.evaluate(async (ms) => {
    const v = document.getElementById('video');
    const ctx = new AudioContext();
    await ctx.resume();
    const source = ctx.createMediaStreamSource(v.srcObject);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    source.connect(analyser);
    await new Promise((r) => setTimeout(r, ms));
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    let best = 1;
    for (let i = 1; i < bins.length; i += 1) if (bins[i] > bins[best]) best = i;
    const result = { hz: (best * ctx.sampleRate) / analyser.fftSize, db: bins[best] };
    source.disconnect();
    await ctx.close();
    return result;
  }, ms);
}

async function pressListen(page) {
  await page.click('#listen');
  await page.waitForFunction(() => document.getElementById('listen').getAttribute('aria-pressed') === 'true'
    || document.getElementById('listen-status').textContent.startsWith('No sound'), null, { timeout: 20_000 });
}

// Opens `camera` from the list, checks it is silent, presses Listen and measures the tone.
async function hear(page, camera, what) {
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
  await page.screenshot({ path: join(OUT, `${what}.png`) });
  // Pressed again, the sound stops.
  await page.click('#listen');
  await page.waitForFunction(() => document.getElementById('listen').getAttribute('aria-pressed') === 'false');
  assert.equal(await page.evaluate(() => document.getElementById('video').muted), true);
  await page.evaluate(() => { location.hash = ''; });
  await page.waitForSelector('#cameras-view:not([hidden])');
  return { hz: Math.round(heard.hz), db: Math.round(heard.db), heardMs };
}

try {
  const ctx = await liveBrowser(browsers);
  const page = ctx.pages()[0] ?? await ctx.newPage();
  // The 409 of the Speex camera's sound and the 404s this test asks for are expected.
  collectProblems(page, problems, 'page', /status of (401|404|409)/);
  await logIn(page);
  const aac = await hear(page, env('AAC_CAMERA'), 'aac-through-agent');
  const pcmu = await hear(page, env('PCMU_CAMERA'), 'pcmu-direct');

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
