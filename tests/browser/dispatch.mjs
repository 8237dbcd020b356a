// Guard dispatch in Chromium, the customer and two guard centers at once: the customer asks
// for a guard from a dispatch camera's live view (the confirmation shows the fee), sharing
// the picture and the live view; the Tokyo operator's console shows the request without a reload, the East
// operator's never does; the Tokyo operator opens it, sees the shared picture, watches the
// shared live view, accepts; the
// customer's page shows the acceptance and the fee without a reload; the customer cancels and
// the fee stays due, and the operator's live view ends. A camera-only camera's live view offers no guard. Run by
// tests/browser_dispatch.rs inside a loopback-only network namespace.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, env, launch, liveBrowser, openCamera, waitPlaying } from './common.mjs';

const OUT = env('OUT_DIR');
const CAMERA = env('CAMERA_ID');
const CAMERA_ONLY = env('CAMERA_ONLY_ID');
const PASSWORD = env('PASSWORD');
mkdirSync(OUT, { recursive: true });
const browsers = [];
const problems = [];

// Page errors are problems; so are console errors other than the expected failed loads (the
// 401 of /api/me before logging in; the camera-only camera has no agent, so its live view is
// answered 409).
function watch(page, who) {
  page.on('pageerror', (e) => problems.push(`${who}: page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (401|409)/.test(m.text())) problems.push(`${who}: console: ${m.text()}`);
  });
}

// A browser logged in as operator `email`, on the console with its queue loaded; with `live`,
// one that may play live video.
async function operator(email, live = false) {
  let ctx;
  if (live) {
    ctx = await liveBrowser(browsers);
  } else {
    const b = await launch();
    browsers.push(b);
    ctx = b.ctx;
  }
  const page = ctx.pages()[0] ?? await ctx.newPage();
  watch(page, email);
  await page.goto(env('BASE_URL'));
  await page.waitForSelector('#login-view:not([hidden])');
  await page.fill('#email', email);
  await page.fill('#password', PASSWORD);
  await page.click('#login-submit');
  await page.waitForSelector('#console-view:not([hidden])');
  await page.waitForSelector('#console-view[data-loaded="true"]');
  return page;
}

try {
  const ctx = await liveBrowser(browsers);
  const { page } = await openCamera(ctx, CAMERA);
  watch(page, 'customer');
  await waitPlaying(page, 20_000);

  const tokyo = await operator(env('OPERATOR_EMAIL'), true);
  const east = await operator(env('EAST_OPERATOR_EMAIL'));
  // Everything the East console ever lists, whenever it lists it.
  await east.evaluate(() => {
    window.seenRequests = [];
    const note = () => {
      for (const li of document.querySelectorAll('#console-view li[data-request-id]')) {
        if (!window.seenRequests.includes(li.dataset.requestId)) window.seenRequests.push(li.dataset.requestId);
      }
    };
    new MutationObserver(note).observe(document.getElementById('console-view'), { childList: true, subtree: true });
    note();
  });
  assert.equal(await tokyo.$$eval('#console-queue li', (els) => els.length), 0);

  // The confirmation: the fee and the cancellation rule, then the request with the picture.
  await page.waitForSelector('#dispatch-request:not([hidden])');
  await page.click('#dispatch-request');
  await page.waitForSelector('#dispatch-dialog[open]');
  await page.waitForFunction(() => document.getElementById('dispatch-fee-amount').textContent !== '');
  const fee = await page.textContent('#dispatch-fee-amount');
  assert.equal(fee, '3,300 yen (tax included)');
  assert.match(await page.textContent('#dispatch-dialog'), /free until the guard center accepts/);
  // Where the guard goes, and the police first when in danger.
  assert.equal(await page.textContent('#dispatch-address'), `The guard goes to: ${env('HOME_ADDRESS')}`);
  assert.match(await page.textContent('#dispatch-dialog .danger-first'), /^In danger now\? Call 110 first/);
  await checkA11y(page, 'the dispatch confirmation');
  await page.screenshot({ path: join(OUT, 'confirm.png') });
  await page.check('#dispatch-share-snapshot');
  await page.check('#dispatch-share-live');
  // The clip of the motion just seen is offered too.
  await page.waitForSelector('#dispatch-share-clip-label:not([hidden])');
  assert.match(await page.textContent('#dispatch-share-clip-label'), /^ ?Share the video clip of the motion at \d/);
  await page.check('#dispatch-share-clip');
  await page.fill('#dispatch-note', 'Someone at the back door');
  const rowShown = tokyo.waitForSelector('#console-queue li[data-request-id]', { timeout: 10_000 });
  const sentAt = Date.now();
  await page.click('#dispatch-send');
  await rowShown;
  const rowMs = Date.now() - sentAt;
  const id = await tokyo.getAttribute('#console-queue li[data-request-id]', 'data-request-id');
  assert.equal(await tokyo.getAttribute(`#console-queue li[data-request-id="${id}"]`, 'data-state'), 'requested');
  await page.waitForSelector('#dispatch-dialog', { state: 'hidden' });
  await page.waitForSelector('#dispatch-status[data-state="requested"]');
  assert.equal(await page.getAttribute('#dispatch-status', 'data-request-id'), id);
  assert.equal(await page.getAttribute('#dispatch-status', 'data-fee-due'), '0');
  await page.waitForSelector('#dispatch-message[data-kind="shared"]', { timeout: 10_000 });
  const sharedMs = Date.now() - sentAt;
  assert.ok(await page.isHidden('#dispatch-request'), 'no second request while one is open');
  await page.screenshot({ path: join(OUT, 'requested.png') });

  // The age ticks, every second.
  const age = `#console-queue li[data-request-id="${id}"] .age`;
  const age1 = await tokyo.textContent(age);
  assert.match(age1, /^\d+:\d\d$/);
  await tokyo.waitForFunction(([sel, before]) => document.querySelector(sel).textContent !== before, [age, age1], { timeout: 3000 });

  // The Tokyo operator opens it: the customer, the note and the shared picture.
  await tokyo.click(`#console-queue li[data-request-id="${id}"] button`);
  await tokyo.waitForSelector(`#console-detail[data-request-id="${id}"]:not([hidden])`);
  assert.equal(await tokyo.textContent('#console-customer'), 'Alice');
  assert.equal(await tokyo.textContent('#console-address'), env('HOME_ADDRESS'));
  assert.equal(await tokyo.textContent('#console-camera'), env('CAMERA_NAME'));
  assert.equal(await tokyo.textContent('#console-note'), 'Someone at the back door');
  assert.match(await tokyo.textContent('#console-proposals'), /Sato/);
  await tokyo.waitForFunction(() => {
    const img = document.getElementById('console-snapshot');
    return img.complete && img.naturalWidth > 0 && !document.getElementById('console-snapshot-figure').hidden;
  }, null, { timeout: 10_000 });
  const picture = await tokyo.$eval('#console-snapshot', (img) => ({ w: img.naturalWidth, h: img.naturalHeight }));
  assert.deepEqual(picture, { w: 1280, h: 720 });
  await tokyo.screenshot({ path: join(OUT, 'console-opened.png'), fullPage: true });

  // And the clip: the operator plays it (the space bar on the player), at the camera's size.
  await tokyo.waitForSelector('#console-clip-figure:not([hidden])');
  assert.match(await tokyo.textContent('#console-shared'), /動画クリップ/);
  await tokyo.focus('#console-clip');
  await tokyo.keyboard.press('Space');
  await tokyo.waitForFunction(() => {
    const v = document.getElementById('console-clip');
    return v.currentTime > 0.5 && v.videoWidth === 1280;
  }, null, { timeout: 20_000 });
  await tokyo.$eval('#console-clip', (v) => v.pause());

  // The customer shares the live view too: the operator watches it.
  await tokyo.waitForSelector('#console-live:not([hidden])');
  const watchAt = Date.now();
  await tokyo.click('#console-watch');
  await tokyo.waitForFunction(() => {
    const v = document.getElementById('console-video');
    return !v.hidden && v.videoWidth > 0 && v.currentTime > 0;
  }, null, { timeout: 20_000 });
  const liveMs = Date.now() - watchAt;
  // The camera's full-size picture (1280×720) fits the console on a desktop and on a phone:
  // nothing spills sideways and Accept stays on screen.
  for (const [width, height] of [[1366, 800], [390, 844]]) {
    await tokyo.setViewportSize({ width, height });
    const overflow = await tokyo.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the console is ${overflow}px wider than a ${width}px screen`);
    const accept = await (await tokyo.$('#console-accept')).boundingBox();
    assert.ok(accept.x >= 0 && accept.x + accept.width <= width, `Accept off screen at ${width}px: ${JSON.stringify(accept)}`);
    await tokyo.screenshot({ path: join(OUT, `console-live-${width}.png`) });
  }
  await tokyo.setViewportSize({ width: 1280, height: 900 });

  // Accepting: the customer sees it, and the fee, without a reload.
  assert.ok(await tokyo.isVisible('#console-accept'));
  const acceptedAt = Date.now();
  await tokyo.click('#console-accept');
  await page.waitForSelector('#dispatch-status[data-state="accepted"][data-fee-due="3300"]', { timeout: 10_000 });
  const acceptSeenMs = Date.now() - acceptedAt;
  assert.match(await page.textContent('#dispatch-status'), /Fee due: 3,300 yen/);
  await tokyo.waitForSelector(`#console-queue li[data-request-id="${id}"][data-state="accepted"]`);
  await tokyo.waitForFunction(() => document.querySelectorAll('#console-steps li').length === 2);
  assert.match(await tokyo.textContent('#console-steps li:last-child'), /Oscar/);
  // The console now offers to send a guard, the nearest first.
  await tokyo.waitForSelector('#console-assign-form:not([hidden])');
  assert.match(await tokyo.$eval('#console-guard-select', (s) => s.options[s.selectedIndex].textContent), /^Sato/);
  await page.screenshot({ path: join(OUT, 'accepted.png') });

  // Cancelling after acceptance: the page asks, saying the fee stays due.
  let question = '';
  page.once('dialog', (d) => { question = d.message(); d.accept(); });
  const cancelledAt = Date.now();
  await page.click('#dispatch-cancel');
  await page.waitForSelector('#dispatch-status[data-state="cancelled"][data-fee-due="3300"]', { timeout: 10_000 });
  const cancelMs = Date.now() - cancelledAt;
  assert.match(question, /fee of 3,300 yen is due/);
  assert.match(await page.textContent('#dispatch-state'), /^Cancelled — fee due 3,300 yen$/);
  assert.ok(await page.isHidden('#dispatch-cancel'));
  await page.waitForSelector('#dispatch-request:not([hidden])');
  await page.screenshot({ path: join(OUT, 'cancelled.png') });

  // The console moves it out of the open queue and takes the customer's details away.
  await tokyo.waitForSelector(`#console-closed li[data-request-id="${id}"][data-state="cancelled"]`, { timeout: 10_000 });
  assert.equal(await tokyo.$$eval('#console-queue li', (els) => els.length), 0);
  await tokyo.waitForSelector('#console-facts', { state: 'hidden' });
  await tokyo.waitForSelector('#console-snapshot-figure', { state: 'hidden' });
  await tokyo.waitForSelector('#console-clip-figure', { state: 'hidden' });
  assert.ok(await tokyo.$eval('#console-clip', (v) => !v.hasAttribute('src')));
  // The live share ended with the request.
  await tokyo.waitForSelector('#console-live', { state: 'hidden' });
  assert.ok(await tokyo.$eval('#console-video', (v) => v.hidden && !v.srcObject));
  assert.ok(await tokyo.isHidden('#console-accept') && await tokyo.isHidden('#console-assign-form'));
  // Fetched again once closed: the steps and the fee as stored.
  await tokyo.waitForFunction(() => document.querySelectorAll('#console-steps li').length === 3);
  assert.match(await tokyo.textContent('#console-fee'), /3,300/);
  await tokyo.screenshot({ path: join(OUT, 'console-closed.png'), fullPage: true });

  // The cameras view lists the request with its fee, and the charge.
  await page.click('#live-view .back');
  await page.waitForSelector(`#dispatch-list li[data-request-id="${id}"][data-state="cancelled"][data-fee-due="3300"]`);
  assert.equal(await page.$$eval('#charges li', (els) => els.length), 1);
  assert.match(await page.textContent('#charges li'), /3,300 yen/);
  await page.screenshot({ path: join(OUT, 'cameras.png'), fullPage: true });

  // A camera-only camera's live view offers no guard.
  await page.click(`a[href="#camera/${CAMERA_ONLY}"]`);
  await page.waitForFunction((name) => document.getElementById('live-name').textContent === name && !document.getElementById('live-view').hidden, env('CAMERA_ONLY_NAME'));
  assert.ok(await page.isHidden('#dispatch'), 'the dispatch part is hidden');
  assert.ok(await page.isHidden('#dispatch-request'), 'no Request button');
  await page.screenshot({ path: join(OUT, 'camera-only.png') });

  // The East center never saw Tokyo's request.
  assert.deepEqual(await east.evaluate(() => window.seenRequests), []);
  assert.equal(await east.$$eval('#console-view li[data-request-id]', (els) => els.length), 0);

  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, request_id: Number(id), fee, rowMs, sharedMs, liveMs, acceptSeenMs, cancelMs, picture }));
} finally {
  for (const b of browsers) await b.close();
}
