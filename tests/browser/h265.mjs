// H.265 cameras play in Chromium (one read directly, one behind its agent): the relay
// transcodes each to H.264 once for every viewer; a second page starts at once from that
// transcode's group of pictures.
// Run by tests/browser_codecs.rs inside a loopback-only network namespace.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { env, liveBrowser, openCamera, waitPlaying, recordPeerConnections, connectedStats } from './common.mjs';

const OUT = env('OUT_DIR');
const CAMERAS = env('CAMERA_IDS').split(',');
mkdirSync(OUT, { recursive: true });
const browsers = [];

async function play(camera) {
  const ctx = await liveBrowser(browsers);
  await recordPeerConnections(ctx);
  const { page, started } = await openCamera(ctx, camera);
  await page.waitForFunction(() => document.getElementById('video').videoWidth > 0, null, { timeout: 30_000 });
  const firstFrameMs = Date.now() - started;
  await waitPlaying(page, 30_000);
  const video = (await connectedStats(page, 'inbound-rtp')).find((s) => s.kind === 'video');
  return { page, firstFrameMs, codec: video?.mimeType };
}

try {
  const figures = {};
  for (const camera of CAMERAS) {
    const first = await play(camera);
    assert.equal(first.codec, 'video/H264');
    assert.deepEqual(await first.page.evaluate(() => {
      const v = document.getElementById('video');
      return [v.videoWidth, v.videoHeight];
    }), [640, 360]);
    await first.page.screenshot({ path: join(OUT, `h265-${camera}.png`) });
    const second = await play(camera);
    assert.equal(second.codec, 'video/H264');
    figures[camera] = { coldFirstFrameMs: first.firstFrameMs, warmFirstFrameMs: second.firstFrameMs };
    for (const b of browsers.splice(0)) await b.close();
  }
  console.log(JSON.stringify({ ok: true, ...figures }));
} finally {
  for (const b of browsers) await b.close();
}
