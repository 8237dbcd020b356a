// An H.265 camera plays in Chromium: the relay transcodes it to H.264 once for every viewer;
// a second page starts at once from that transcode's group of pictures.
// Run by tests/browser_codecs.rs inside a loopback-only network namespace.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { env, liveBrowser, openCamera, waitPlaying, recordPeerConnections, connectedStats } from './common.mjs';

const OUT = env('OUT_DIR');
const CAMERA = env('CAMERA_ID');
mkdirSync(OUT, { recursive: true });
const browsers = [];

async function play() {
  const ctx = await liveBrowser(browsers);
  await recordPeerConnections(ctx);
  const { page, started } = await openCamera(ctx, CAMERA);
  await page.waitForFunction(() => document.getElementById('video').videoWidth > 0, null, { timeout: 30_000 });
  const firstFrameMs = Date.now() - started;
  await waitPlaying(page, 30_000);
  const video = (await connectedStats(page, 'inbound-rtp')).find((s) => s.kind === 'video');
  return { page, firstFrameMs, codec: video?.mimeType };
}

try {
  const first = await play();
  assert.equal(first.codec, 'video/H264');
  assert.deepEqual(await first.page.evaluate(() => {
    const v = document.getElementById('video');
    return [v.videoWidth, v.videoHeight];
  }), [640, 360]);
  await first.page.screenshot({ path: join(OUT, 'h265.png') });
  const second = await play();
  assert.equal(second.codec, 'video/H264');
  console.log(JSON.stringify({ ok: true, coldFirstFrameMs: first.firstFrameMs, warmFirstFrameMs: second.firstFrameMs }));
} finally {
  for (const b of browsers) await b.close();
}
