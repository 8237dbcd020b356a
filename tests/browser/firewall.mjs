// Live video where the network blocks the direct path: the page plays anyway, with nothing for
// the person to do. EXPECT says which path: `tcp` (ICE-TCP to the relay, UDP being dropped)
// or `relay-tls` (TURN over TLS, the relay's media ports being closed). Run by
// tests/browser_firewalls.rs inside loopback-only network namespaces with a firewall.
import assert from 'node:assert/strict';
import { env, liveBrowser, openCamera, recordPeerConnections, waitPlaying } from './common.mjs';

const browsers = [];
try {
  // The test's TURN server has a certificate made for the test, which no browser trusts.
  const ctx = await liveBrowser(browsers, env('EXPECT') === 'relay-tls' ? ['--ignore-certificate-errors'] : []);
  // The page's peer connections, kept where the test can ask them which path they took.
  await recordPeerConnections(ctx);
  const { page, started } = await openCamera(ctx, env('CAMERA_ID'));
  await waitPlaying(page, 30_000);
  const firstFrameMs = Date.now() - started;
  assert.equal(await page.textContent('#live-status'), 'Live');
  const path = await page.evaluate(async () => {
    const pc = window.peerConnections.at(-1);
    const stats = await pc.getStats();
    // The transport names the pair it sends on; a pair's own `nominated` flag can lag behind
    // the first frames, which once left this test with no pair at all.
    let pair = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    if (!pair) stats.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    return {
      protocol: local && local.protocol,
      localType: local && local.candidateType,
      relayProtocol: local && local.relayProtocol,
      remoteType: remote && remote.candidateType,
      attempts: window.peerConnections.length,
    };
  });
  if (env('EXPECT') === 'tcp') {
    assert.equal(path.protocol, 'tcp', JSON.stringify(path));
    // Straight to the relay (Chrome's active TCP end shows as peer-reflexive), not relayed.
    assert.notEqual(path.localType, 'relay', JSON.stringify(path));
    assert.equal(path.remoteType, 'host', JSON.stringify(path));
  } else {
    assert.equal(path.localType, 'relay', JSON.stringify(path));
    assert.equal(path.relayProtocol, 'tls', JSON.stringify(path));
    assert.ok(path.attempts >= 2, `the direct path first: ${JSON.stringify(path)}`);
  }
  console.log(JSON.stringify({ ok: true, path, firstFrameMs }));
} finally {
  for (const b of browsers) await b.close();
}
