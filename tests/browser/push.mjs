// Notifications in Chromium (run by tests/browser_push.rs). Alice's alerts card shows the part
// for this device, with the device she has (a test device at the loopback push service),
// and the pages' service worker is registered. The push the relay sent that device, as the
// push service decrypted it (PAYLOAD), is handed to the service worker the way a push service's
// message is (the DevTools protocol's ServiceWorker.deliverPushMessage): it shows the
// notification with the camera, the time, the picture and the event's link. Then she removes
// the device from the card.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, collectProblems, env, launch, logIn } from './common.mjs';

const OUT = env('OUT_DIR');
const BASE = env('BASE_URL');
const PAYLOAD = JSON.parse(env('PAYLOAD'));
mkdirSync(OUT, { recursive: true });

const b = await launch({ permissions: ['notifications'] });
try {
  const page = b.ctx.pages()[0] ?? await b.ctx.newPage();
  const problems = [];
  collectProblems(page, problems, 'alice');
  const cdp = await b.ctx.newCDPSession(page);
  const registrations = [];
  cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => registrations.push(...e.registrations));
  await cdp.send('ServiceWorker.enable');

  await logIn(page);
  await page.waitForSelector('#push:not([hidden])');
  assert.equal(await page.textContent('#push-toggle'), 'Turn on notifications here');
  await page.waitForSelector('#push-devices li[data-device-id]');
  assert.match(await page.textContent('#push-devices'), /127\.0\.0\.1/);
  await checkA11y(page, 'the notifications part of the alerts card');
  const script = await page.evaluate(async () => (await navigator.serviceWorker.ready).active.scriptURL);
  assert.equal(script, `${BASE}/sw.js`);

  // The pushed alert, handed to the service worker.
  const ours = registrations.find((r) => r.scopeURL === `${BASE}/` && !r.isDeleted);
  assert.ok(ours, `a registration for ${BASE}/: ${JSON.stringify(registrations)}`);
  await cdp.send('ServiceWorker.deliverPushMessage', {
    origin: BASE, registrationId: ours.registrationId, data: JSON.stringify(PAYLOAD),
  });
  const notifications = () => page.evaluate(async () => {
    const list = await (await navigator.serviceWorker.ready).getNotifications();
    return list.map((n) => ({ title: n.title, body: n.body, image: n.image, tag: n.tag, url: n.data.url }));
  });
  let shown = [];
  for (const until = Date.now() + 10_000; shown.length === 0 && Date.now() < until;) {
    shown = await notifications();
    if (shown.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(shown.length, 1);
  assert.deepEqual(shown[0], {
    title: PAYLOAD.title, body: PAYLOAD.body, image: PAYLOAD.image, tag: PAYLOAD.tag, url: PAYLOAD.url,
  });
  // Its picture is the event's snapshot, there without a session too.
  const picture = await page.evaluate(async (url) => {
    const r = await fetch(url, { credentials: 'omit' });
    return { status: r.status, type: r.headers.get('content-type') };
  }, PAYLOAD.image);
  assert.deepEqual(picture, { status: 200, type: 'image/jpeg' });
  await page.screenshot({ path: join(OUT, 'alerts-card.png'), fullPage: true });

  // She removes the device from the card.
  await page.getByRole('button', { name: 'Remove the device on 127.0.0.1 from notifications' }).click();
  await page.waitForFunction(() => document.querySelectorAll('#push-devices li').length === 0);
  assert.match(await page.textContent('#push-status'), /That device gets no more notifications/);
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true }));
} finally {
  await b.close();
}
