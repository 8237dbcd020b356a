// Live video where the network drops every UDP datagram: the page plays anyway, over ICE-TCP,
// with nothing for the person to do. Run by tests/browser_blocked_udp.rs inside a loopback-only
// network namespace whose firewall drops UDP.
import assert from 'node:assert/strict';
import { env, liveBrowser, openCamera, waitPlaying } from './common.mjs';

const browsers = [];
try {
  const ctx = await liveBrowser(browsers);
  // The page's peer connections, kept where the test can ask them which path they took.
  await ctx.addInitScript(() => {
    const Original = window.RTCPeerConnection;
    window.testPeerConnections = [];
    window.RTCPeerConnection = function (...args) {
      const pc = new Original(...args);
      window.testPeerConnections.push(pc);
      return pc;
    };
    window.RTCPeerConnection.prototype = Original.prototype;
  });
  const { page, started } = await openCamera(ctx, env('CAMERA_ID'));
  await waitPlaying(page, 30_000);
  const firstFrameMs = Date.now() - started;
  assert.equal(await page.textContent('#live-status'), 'Live');
  const path = await page.evaluate(async () => {
    const pc = window.testPeerConnections.at(-1);
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    return { protocol: local && local.protocol, remoteProtocol: remote && remote.protocol, remoteType: remote && remote.candidateType };
  });
  assert.equal(path.protocol, 'tcp', JSON.stringify(path));
  assert.equal(path.remoteType, 'host', JSON.stringify(path));
  console.log(JSON.stringify({ ok: true, protocol: path.protocol, firstFrameMs }));
} finally {
  for (const b of browsers) await b.close();
}
