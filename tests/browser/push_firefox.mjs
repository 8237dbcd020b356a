// Notifications in Firefox ESR, end to end (run by tests/browser_push.rs in a loopback-only
// network namespace). Firefox's own push service is the loopback one of the test
// (`dom.push.serverURL`; it speaks Firefox's push protocol). Alice presses "Turn on
// notifications here" on her alerts card: Firefox subscribes with the relay's key, and the page
// hands the subscription to the relay. Motion on her camera is then pushed by the relay through
// that service, encrypted to Firefox's own keys; Firefox decrypts it and the page's service
// worker shows the alert. Last she presses "Turn off notifications here". Driven over WebDriver
// BiDi by puppeteer-core.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { env } from './common.mjs';

const OUT = env('OUT_DIR');
const BASE = env('BASE_URL');
mkdirSync(OUT, { recursive: true });

const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr',
  headless: true,
  protocolTimeout: 60_000,
  extraPrefsFirefox: {
    'dom.push.enabled': true,
    'dom.push.connection.enabled': true,
    'dom.push.serverURL': env('PUSH_SERVER'),
    'dom.push.testing.allowInsecureServerURL': true,
    // Notifications allowed, as a person who said yes to the prompt; shown by Firefox itself.
    'permissions.default.desktop-notification': 1,
    'alerts.useSystemBackend': false,
  },
});
const problems = [];

const text = (page, id) => page.evaluate((i) => document.getElementById(i).textContent, id);
const waitText = (page, id, re) => page.waitForFunction(
  (i, source) => new RegExp(source).test(document.getElementById(i).textContent), { timeout: 20_000 }, id, re.source,
);

try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(BASE);
  await page.waitForSelector('#login-view:not([hidden])');
  await page.locator('#email').fill(env('EMAIL'));
  await page.locator('#password').fill(env('PASSWORD'));
  await page.click('#login-submit');
  await page.waitForSelector('#push:not([hidden])');
  assert.equal(await text(page, 'push-toggle'), 'Turn on notifications here');

  await page.click('#push-toggle');
  await waitText(page, 'push-status', /Notifications are on for this device/);
  await waitText(page, 'push-toggle', /Turn off notifications here/);
  assert.match(await text(page, 'push-devices'), /This device/);

  // Motion on her camera, from its agent.
  const upload = await fetch(`${BASE}/agent/v1/events?key=firefox-0001&captured_at=${Date.now()}&score=0.04&bbox=0,0,8,8`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env('AGENT_TOKEN')}`, 'content-type': 'image/jpeg' },
    body: readFileSync(env('JPEG_FILE')),
  });
  assert.equal(upload.status, 201);
  const shown = await page.waitForFunction(async () => {
    const list = await (await navigator.serviceWorker.ready).getNotifications();
    return list.length > 0 && list.map((n) => ({ title: n.title, body: n.body, url: n.data.url }));
  }, { timeout: 20_000, polling: 200 }).then((h) => h.jsonValue());
  assert.equal(shown.length, 1);
  assert.equal(shown[0].title, 'Motion: Porch');
  assert.match(shown[0].body, /\d\d:\d\d:\d\d/);
  assert.match(shown[0].url, new RegExp(`^${BASE}/#event/\\d+$`));
  await page.screenshot({ path: join(OUT, 'firefox-alerts-card.png'), fullPage: true });

  await page.click('#push-toggle');
  await waitText(page, 'push-status', /That device gets no more notifications/);
  await page.waitForFunction(() => document.querySelectorAll('#push-devices li').length === 0);
  assert.equal(await text(page, 'push-toggle'), 'Turn on notifications here');
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, shown }));
} finally {
  await browser.close();
}
