// Talkback in Chromium: the owner holds "speak" (the mouse, then Space) and the camera's
// speaker hears the page's microphone (Chromium's fake one, playing TONE_HZ from MICROPHONE),
// as the simulator's back-channel measures it in its log (CAMERA_LOG); letting go stops it. A
// camera without a back-channel says why on the page; another customer's camera, or a session
// that is not this page's, is 404; the talks are in the history on the cameras page.
// Run by tests/browser_talk.rs inside a loopback-only network namespace.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { env, liveBrowser, logIn, waitPlaying, collectProblems, recordPeerConnections } from './common.mjs';

const OUT = env('OUT_DIR');
const TONE_HZ = Number(env('TONE_HZ'));
mkdirSync(OUT, { recursive: true });
const browsers = [];
const problems = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// What the camera's speaker has heard: each line the simulator logs, a second apart while it
// hears something (its pitch, its level, when that stretch of sound began).
function heard() {
  return readFileSync(env('CAMERA_LOG'), 'utf8')
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .filter((l) => l.includes('back-channel heard'))
    .map((l) => ({
      hz: Number(/hz=(\d+)/.exec(l)[1]),
      dbfs: Number(/dbfs=(-?\d+)/.exec(l)[1]),
      began: Number(/began_unix_ms=(\d+)/.exec(l)[1]),
    }));
}

// Waits until the speaker has heard the tone in a stretch that began after `since`.
async function speakerHears(since, what) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const tone = heard().find((h) => h.began >= since && Math.abs(h.hz - TONE_HZ) <= 20);
    if (tone) return tone;
    await sleep(100);
  }
  throw new Error(`${what}: the camera heard no ${TONE_HZ} Hz since ${since}: ${JSON.stringify(heard().slice(-5))}`);
}

// Once let go, the speaker falls silent: nothing new is reported a second on.
async function speakerFallsSilent(what) {
  await sleep(1500);
  const before = heard().length;
  await sleep(2000);
  assert.equal(heard().length, before, `${what}: the camera still hears something after the release`);
}

const pressed = (page) => page.getAttribute('#talk', 'aria-pressed');

// Holds Space on the focused button for a few seconds: the camera hears the tone, then falls
// silent once it is let go. Returns what it heard first.
async function holdSpace(page, what) {
  await page.focus('#talk');
  const pressedAt = Date.now();
  await page.keyboard.down(' ');
  await page.waitForFunction(() => document.getElementById('talk').getAttribute('aria-pressed') === 'true',
    null, { timeout: 15_000 });
  const first = await speakerHears(pressedAt, what);
  await sleep(2500);
  await page.keyboard.up(' ');
  await page.waitForFunction(() => document.getElementById('talk').getAttribute('aria-pressed') === 'false');
  await speakerFallsSilent(what);
  return { ...first, afterPressMs: first.began - pressedAt };
}

try {
  const ctx = await liveBrowser(browsers, [
    '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${env('MICROPHONE')}`,
  ]);
  const page = ctx.pages()[0] ?? await ctx.newPage();
  // The Gate camera's 409 and the 404s asked for below are expected.
  collectProblems(page, problems, 'page', /status of (401|404|409)/);
  await recordPeerConnections(page);
  await logIn(page);
  await page.click(`a[href="#camera/${env('SPEAKER_CAMERA')}"]`);
  await waitPlaying(page, 20_000);
  assert.equal(await page.textContent('#talk'), 'Hold to speak');

  // Held with the mouse: the camera hears the microphone until it is let go.
  const box = await page.locator('#talk').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const mousePressedAt = Date.now();
  await page.mouse.down();
  await page.waitForFunction(() => document.getElementById('talk').getAttribute('aria-pressed') === 'true',
    null, { timeout: 15_000 });
  assert.equal(await page.textContent('#talk'), 'Speaking…');
  assert.equal(await page.textContent('#talk-status'), '');
  const byMouse = await speakerHears(mousePressedAt, 'held with the mouse');
  await page.screenshot({ path: join(OUT, 'speaking.png') });
  await sleep(2500);
  await page.mouse.up();
  await page.waitForFunction(() => document.getElementById('talk').getAttribute('aria-pressed') === 'false');
  // The microphone is let go too (the browser's recording indicator goes off).
  assert.equal(await page.evaluate(() => window.peerConnections.at(-1).getSenders()
    .filter((s) => s.track && s.track.readyState === 'live').length), 0);
  await speakerFallsSilent('mouse');

  // Held with Space, from the keyboard.
  const byKey = await holdSpace(page, 'held with Space');

  // The same camera read directly: its speaker is reached without the agent.
  await page.evaluate(() => { location.hash = ''; });
  await page.waitForSelector('#cameras-view:not([hidden])');
  await page.click(`a[href="#camera/${env('DIRECT_SPEAKER_CAMERA')}"]`);
  await waitPlaying(page, 20_000);
  const direct = await holdSpace(page, 'read directly, held with Space');
  await page.evaluate(() => { location.hash = ''; });
  await page.waitForSelector('#cameras-view:not([hidden])');
  await page.click(`a[href="#camera/${env('SPEAKER_CAMERA')}"]`);
  await waitPlaying(page, 20_000);

  // Another customer's camera, or a session that is not this page's: 404, whoever asks.
  const status = (camera, session) => page.evaluate(async ([camera, session]) => (await fetch(
    `/api/cameras/${camera}/whep/${session}/talk`,
    { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"talk":true}' },
  )).status, [camera, session]);
  assert.equal(await status(env('FOREIGN_CAMERA'), 'ab'.repeat(16)), 404);
  assert.equal(await status(env('SPEAKER_CAMERA'), 'ab'.repeat(16)), 404);

  // A camera without a speaker: the page says so, and nothing stays pressed or recording.
  await page.evaluate(() => { location.hash = ''; });
  await page.waitForSelector('#cameras-view:not([hidden])');
  // Each talk is in the history on the cameras page, under the camera's name.
  const history = await page.textContent('#history');
  assert.match(history, /Spoke through the camera: Porch/);
  assert.match(history, /Stopped speaking through the camera: Porch \(\d+(\.\d)? s\)/);
  assert.match(history, /Stopped speaking through the camera: Door/);
  await page.click(`a[href="#camera/${env('MUTE_CAMERA')}"]`);
  await waitPlaying(page, 20_000);
  await page.focus('#talk');
  await page.keyboard.down(' ');
  await page.waitForFunction(() => document.getElementById('talk-status').textContent.startsWith('Cannot speak'),
    null, { timeout: 15_000 });
  const why = await page.textContent('#talk-status');
  assert.match(why, /no speaker the relay can reach/);
  assert.equal(await pressed(page), 'false');
  await page.keyboard.up(' ');
  await page.screenshot({ path: join(OUT, 'no-speaker.png') });
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({
    ok: true,
    // From the press to the first sound the camera heard: the speaker's set-up included.
    firstSoundAfterPressMs: { mouse: byMouse.began - mousePressedAt, space: byKey.afterPressMs, direct: direct.afterPressMs },
    heard: { hz: byMouse.hz, dbfs: byMouse.dbfs },
    noSpeaker: why,
  }));
} finally {
  for (const b of browsers) await b.close();
}
