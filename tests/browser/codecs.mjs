// Browsers that offer no H.264 still play: a Chromium page made to offer only VP8 plays the
// camera in VP8 (transcoded once on the relay), a second such page shares that transcode,
// and a page that offers H.264 meanwhile gets the camera's own H.264.
// Run by tests/browser_codecs.rs inside a loopback-only network namespace.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { env, liveBrowser, openCamera, waitPlaying, recordPeerConnections, connectedStats } from './common.mjs';

const OUT = env('OUT_DIR');
const CAMERA = env('CAMERA_ID');
mkdirSync(OUT, { recursive: true });
const browsers = [];

// A browser whose pages offer VP8 as their only video codec, as one without H.264 does.
async function withoutH264() {
  const ctx = await liveBrowser(browsers);
  await ctx.addInitScript(() => {
    const add = RTCPeerConnection.prototype.addTransceiver;
    RTCPeerConnection.prototype.addTransceiver = function (kind, init) {
      const transceiver = add.call(this, kind, init);
      if (kind === 'video') {
        const codecs = RTCRtpReceiver.getCapabilities('video').codecs;
        transceiver.setCodecPreferences(codecs.filter((c) => /VP8|rtx/i.test(c.mimeType)));
      }
      return transceiver;
    };
  });
  await recordPeerConnections(ctx);
  return ctx;
}

async function play(ctx) {
  const { page, started } = await openCamera(ctx, CAMERA);
  await waitPlaying(page, 30_000);
  const firstFrameMs = Date.now() - started;
  const video = await connectedStats(page, 'inbound-rtp');
  return { page, firstFrameMs, codec: video.find((s) => s.kind === 'video')?.mimeType };
}

try {
  const vp8 = await play(await withoutH264());
  assert.equal(vp8.codec, 'video/VP8');
  assert.equal(await vp8.page.evaluate(() => document.getElementById('video').videoWidth), 640);
  await vp8.page.screenshot({ path: join(OUT, 'vp8.png') });

  const second = await play(await withoutH264());
  assert.equal(second.codec, 'video/VP8');
  const h264Ctx = await liveBrowser(browsers);
  await recordPeerConnections(h264Ctx);
  const h264 = await play(h264Ctx);
  assert.equal(h264.codec, 'video/H264');
  // The first VP8 page still plays (on this 2-core machine three browsers and the transcode
  // can hold a page's frames back for a moment: a few seconds are allowed).
  await waitPlaying(vp8.page, 10_000);
  console.log(JSON.stringify({
    ok: true,
    vp8FirstFrameMs: vp8.firstFrameMs,
    secondVp8FirstFrameMs: second.firstFrameMs,
    h264FirstFrameMs: h264.firstFrameMs,
  }));
} finally {
  for (const b of browsers) await b.close();
}
