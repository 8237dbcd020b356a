// Live video in Chromium: log in, open the camera, decode 1280×720 frames; a second browser at
// once; kill the camera and start it again, and the same page plays again without a reload.
// Run by tests/browser_live.rs inside a loopback-only network namespace.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { env, liveBrowser, openCamera, framesIn, waitPlaying } from './common.mjs';

const OUT = env('OUT_DIR');
const CAMERA = env('CAMERA_ID');
mkdirSync(OUT, { recursive: true });
const browsers = [];

let sim = null;
let agent = null;
try {
  const first = await liveBrowser(browsers);
  const { page, started } = await openCamera(first, CAMERA);
  await waitPlaying(page, 20_000);
  const firstFrameMs = Date.now() - started;
  assert.equal(await page.evaluate(() => document.getElementById('video').videoWidth), 1280);
  assert.equal(await page.evaluate(() => document.getElementById('video').videoHeight), 720);
  assert.equal(await page.textContent('#live-status'), 'Live');
  await page.click('#stats-toggle');
  await page.waitForFunction(() => document.getElementById('stats').textContent.includes('1280×720'));
  await page.screenshot({ path: join(OUT, 'live.png') });

  // A second browser on the same camera, at the same time.
  const second = await liveBrowser(browsers);
  const other = await openCamera(second, CAMERA);
  await waitPlaying(other.page, 20_000);
  const secondFrameMs = Date.now() - other.started;
  assert.ok((await framesIn(page, 1000)) >= 5, 'the first viewer still plays');

  // Another customer's camera: 404 on WHEP.
  const foreign = await page.evaluate(async (id) => (await fetch(`/api/cameras/${id}/whep`, {
    method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\n',
  })).status, env('FOREIGN_CAMERA_ID'));
  assert.equal(foreign, 404);

  // The camera dies: the page says so; it comes back: the same page plays again.
  process.kill(Number(env('SIM_PID')), 'SIGKILL');
  await page.waitForFunction(() => document.getElementById('live-status').textContent === 'Reconnecting…', null, { timeout: 10_000 });
  const [cmd, ...args] = JSON.parse(env('SIM_CMD'));
  sim = spawn(cmd, args, { stdio: 'ignore' });
  const restarted = Date.now();
  await page.waitForFunction(() => document.getElementById('live-status').textContent === 'Live', null, { timeout: 30_000 });
  await waitPlaying(page, 10_000);
  const recoveredMs = Date.now() - restarted;
  await page.screenshot({ path: join(OUT, 'live-after-restart.png') });

  // The camera's agent stops (the home's internet is down): the page says at once since when
  // the camera is offline, never "Connecting…" for ever; it keeps trying quietly and plays
  // again by itself once the agent is back.
  process.kill(Number(env('AGENT_PID')), 'SIGTERM');
  const agentStopped = Date.now();
  await page.waitForFunction(() => /^Camera offline since .* JST$/.test(document.getElementById('live-status').textContent), null, { timeout: 10_000 });
  const offlineShownMs = Date.now() - agentStopped;
  // A fresh look at the offline camera says so at once too.
  await page.evaluate(() => { location.hash = ''; });
  await page.waitForSelector('#cameras-view:not([hidden])');
  const reopened = Date.now();
  await page.click(`a[href="#camera/${CAMERA}"]`);
  await page.waitForFunction(() => /^Camera offline since .* JST$/.test(document.getElementById('live-status').textContent), null, { timeout: 3_000 });
  const offlineOnOpenMs = Date.now() - reopened;
  await page.screenshot({ path: join(OUT, 'offline.png') });
  const [agentCmd, ...agentArgs] = JSON.parse(env('AGENT_CMD'));
  agent = spawn(agentCmd, agentArgs, { stdio: 'ignore' });
  await page.waitForFunction(() => document.getElementById('live-status').textContent === 'Live', null, { timeout: 30_000 });
  await waitPlaying(page, 10_000);

  // Back to the list: the camera's tile shows the last picture seen as its poster.
  await page.evaluate(() => { location.hash = ''; });
  await page.waitForSelector('#cameras-view:not([hidden]) .tile img.still');
  const still = await page.evaluate(() => document.querySelector('.tile img.still').naturalWidth);
  assert.equal(still, 320);
  // Recent activity names the camera, not "camera N", in what happened and in who did it.
  await page.waitForFunction(() => [...document.querySelectorAll('#history li')].some((li) =>
    li.querySelector('.what').textContent === 'Camera offline: Living room'
      && li.querySelector('.who-did').textContent.startsWith('Living room ·')), null, { timeout: 10_000 });
  await page.screenshot({ path: join(OUT, 'tiles-with-still.png') });

  // The camera's agent watches for motion: the simulated intruder crossing becomes an event
  // under the live picture, with its snapshot, without a reload.
  await page.click(`a[href="#camera/${CAMERA}"]`);
  await page.waitForSelector('#event-list li img.thumb', { timeout: 40_000 });
  await page.waitForFunction(() => document.querySelector('#event-list img.thumb').naturalWidth === 1280);
  assert.ok(await page.$('#timeline .mark'), 'the event is on the day\'s timeline');
  await page.screenshot({ path: join(OUT, 'events.png') });

  // A tab that has seen no picture of the camera shows its latest motion snapshot instead.
  await other.page.evaluate(() => { location.hash = ''; });
  await other.page.waitForSelector('#cameras-view:not([hidden])');
  await other.page.evaluate(() => sessionStorage.clear());
  await other.page.waitForFunction(() => {
    const img = document.querySelector('.tile img.still');
    return img && img.src.includes('/api/events/') && img.naturalWidth === 1280;
  }, null, { timeout: 20_000 });

  console.log(JSON.stringify({ ok: true, firstFrameMs, secondFrameMs, recoveredMs, offlineShownMs, offlineOnOpenMs }));
} finally {
  for (const b of browsers) await b.close();
  if (sim) sim.kill('SIGTERM');
  if (agent) agent.kill('SIGTERM');
}
