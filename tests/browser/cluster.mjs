// Several relay nodes behind HAProxy, in Chromium: pages pinned to node b and to node c (the
// load balancer's cookie) watch a camera whose agent is linked to node a; c turns it with the
// arrow pad and b sees where it went; an event stored on a appears on b's page live; then a
// is killed (-9) and a page that was on a plays again through another node without a reload;
// then c is stopped (SIGTERM) and its page, told to reconnect, plays again through b.
// Run by tests/cluster_browser.rs inside a loopback-only network namespace.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { env, liveBrowser, openCamera, waitPlaying } from './common.mjs';

const OUT = env('OUT_DIR');
const CAMERA = env('CAMERA_ID');
const BASE = env('BASE_URL');
mkdirSync(OUT, { recursive: true });
const browsers = [];

// A browser whose requests the load balancer sends to node `node`, with the camera open.
async function pinnedTo(node) {
  const ctx = await liveBrowser(browsers);
  await ctx.addCookies([{ name: 'eyeward_node', value: node, url: BASE }]);
  const { page, started } = await openCamera(ctx, CAMERA);
  await waitPlaying(page, 20_000);
  return { page, firstFrameMs: Date.now() - started };
}

const pan = (page) => page.evaluate(() => Number(document.getElementById('ptz-position').dataset.pan ?? 'NaN'));

try {
  const onB = await pinnedTo('b');
  const onC = await pinnedTo('c');
  const onA = await pinnedTo('a');

  // c holds "right": a's agent turns the camera; b's page shows the new position.
  await onC.page.waitForSelector('#ptz:not([hidden])');
  await onB.page.waitForFunction(() => document.getElementById('ptz-position').dataset.pan !== undefined, null, { timeout: 10_000 });
  const before = await pan(onB.page);
  const right = await onC.page.$('[data-dir="right"]');
  const box = await right.boundingBox();
  await onC.page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await onC.page.mouse.down();
  await new Promise((r) => setTimeout(r, 800));
  await onC.page.mouse.up();
  const turned = Date.now();
  await onB.page.waitForFunction((was) => {
    const d = document.getElementById('ptz-position').dataset;
    return d.moving === 'false' && Number(d.pan) > was + 0.05;
  }, before, { timeout: 10_000 });
  const ptzSeenMs = Date.now() - turned;

  // An event uploaded to a (as the agent does) is on b's page at once.
  const listed = () => onB.page.evaluate(() => document.querySelectorAll('#event-list li').length);
  const eventsBefore = await listed();
  const uploaded = Date.now();
  const resp = await fetch(`${env('NODE_A')}/agent/v1/events?key=browser-cluster-0001&captured_at=${Date.now()}&score=0.05&bbox=0,0,8,8`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${env('AGENT_TOKEN')}`, 'Content-Type': 'image/jpeg' },
    body: readFileSync(env('JPEG')),
  });
  assert.equal(resp.status, 201);
  await onB.page.waitForFunction((n) => document.querySelectorAll('#event-list li').length > n, eventsBefore, { timeout: 10_000 });
  const eventSeenMs = Date.now() - uploaded;
  await onB.page.screenshot({ path: join(OUT, 'watched-from-b.png') });

  // a dies: the page that was on a plays again through another node, without a reload; b's
  // page goes on (the camera's agent links to another node, which b now pulls from).
  process.kill(Number(env('NODE_A_PID')), 'SIGKILL');
  const killed = Date.now();
  await onA.page.waitForFunction(() => document.getElementById('live-status').textContent === 'Reconnecting…', null, { timeout: 15_000 });
  await onA.page.waitForFunction(() => document.getElementById('live-status').textContent === 'Live', null, { timeout: 20_000 });
  await waitPlaying(onA.page, 10_000);
  const pageBackMs = Date.now() - killed;
  await waitPlaying(onB.page, 15_000);
  const bBackMs = Date.now() - killed;
  await onA.page.screenshot({ path: join(OUT, 'after-the-kill.png') });

  // c stops (SIGTERM, a rolling restart's step): its page is told to reconnect and plays
  // again through the last node.
  // Every status the page shows is kept: "Reconnecting…" may show only for a moment while
  // the stopping node's last frames still arrive.
  await onC.page.evaluate(() => {
    const badge = document.getElementById('live-status');
    window.statusesShown = [];
    new MutationObserver(() => window.statusesShown.push(badge.textContent))
      .observe(badge, { childList: true, characterData: true, subtree: true });
  });
  process.kill(Number(env('NODE_C_PID')), 'SIGTERM');
  const drained = Date.now();
  await onC.page.waitForFunction(() => window.statusesShown.includes('Reconnecting…'), null, { timeout: 15_000 });
  await onC.page.waitForFunction(() => document.getElementById('live-status').textContent === 'Live', null, { timeout: 25_000 });
  await waitPlaying(onC.page, 10_000);
  const drainBackMs = Date.now() - drained;

  console.log(JSON.stringify({
    ok: true,
    firstFrameMs: { b: onB.firstFrameMs, c: onC.firstFrameMs, a: onA.firstFrameMs },
    ptzSeenMs,
    eventSeenMs,
    pageBackMs,
    bBackMs,
    drainBackMs,
  }));
} finally {
  for (const b of browsers) await b.close();
}
