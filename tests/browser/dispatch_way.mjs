// The guard's way, in Chromium: the customer keeps notes for the guards (phone, how to get
// in, key holder); the request sent from the camera's page rings the console (a second
// browser: a line, the tab's title, a desktop notification, a tone) until it is opened; the
// console shows the main action first, the customer's phone and notes, and map links; the
// operator accepts and sends Sato; the customer's page says when Sato is expected and moves
// that time as Sato's phone reports positions; Sato arrives and the operator completes with a
// short report, which the customer's page shows (then in Japanese on a phone). A second
// request, cancelled while Sato drives, rings the console again. Run by
// tests/browser_dispatch_way.rs.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, collectProblems, env, launch, logIn } from './common.mjs';

const OUT = env('OUT_DIR');
const BASE = env('BASE_URL');
const REPORT = env('REPORT');
mkdirSync(OUT, { recursive: true });

const browsers = [];
const problems = [];

async function loggedIn(email, view, extra = {}) {
  const b = await launch(extra);
  browsers.push(b);
  if (extra.permissions) {
    // The desktop notifications the page shows, recorded as they are made.
    await b.ctx.addInitScript(() => {
      const Real = window.Notification;
      window.shownNotifications = [];
      class Recorded extends Real {
        constructor(title, options) {
          super(title, options);
          window.shownNotifications.push(title);
        }
      }
      Object.defineProperty(Recorded, 'permission', { get: () => Real.permission });
      Recorded.requestPermission = (...a) => Real.requestPermission(...a);
      window.Notification = Recorded;
    });
  }
  const page = b.ctx.pages()[0] ?? await b.ctx.newPage();
  // 409: the camera has no agent here, so no video.
  collectProblems(page, problems, email, /status of (401|409)/);
  await logIn(page, email, view);
  return page;
}

// Sato's phone reports where it is.
async function report(lat, lon) {
  const resp = await fetch(`${BASE}/guard/v1/position`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${env('GUARD_TOKEN')}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ lat, lon }),
  });
  assert.equal(resp.status, 204);
}

// The minutes the customer's page says the guard still needs.
async function minutesLeft(page) {
  const text = await page.textContent('#dispatch-eta');
  const m = text.match(/^Expected around .+ JST \(in about (\d+) min\)\.$/);
  assert.ok(m, `the expected arrival reads ${text}`);
  return Number(m[1]);
}

// Sends a request from the camera's page; its id.
async function request(page) {
  await page.waitForSelector('#dispatch-request:not([hidden])');
  await page.click('#dispatch-request');
  await page.waitForSelector('#dispatch-dialog[open]');
  await page.waitForFunction(() => document.getElementById('dispatch-address').textContent !== '');
  await page.click('#dispatch-send');
  await page.waitForSelector('#dispatch-status[data-state="requested"]');
  return page.getAttribute('#dispatch-status', 'data-request-id');
}

// The console rang for `text`: the line, the title, a notification.
async function rang(console, text) {
  await console.waitForSelector('#console-ring:not([hidden])');
  assert.equal(await console.textContent('#console-ring'), text);
  assert.equal(await console.title(), `(1) ${text} — eyeward`);
  assert.ok((await console.evaluate(() => window.shownNotifications)).includes(text), 'no desktop notification');
  assert.ok(['running', 'suspended'].includes(await console.getAttribute('#console-ring', 'data-sound')), 'no tone');
}

try {
  const page = await loggedIn(env('EMAIL'), '#cameras-view');
  // Notes for the guards, kept by the customer.
  await page.waitForSelector('#home-notes-form');
  assert.equal(await page.textContent('#home-address'), env('HOME_ADDRESS'));
  await page.getByLabel('Phone number to call on the way').fill('090-1234-5678');
  await page.getByLabel('How to get in (gate, door, code)').fill('Side gate, code 4921');
  await page.getByLabel('Who holds a key').fill('Neighbour at no. 3, Mr Ito');
  await page.click('#home-save');
  await page.waitForFunction(() => document.getElementById('home-notes-status').textContent === 'Saved.');
  await checkA11y(page, 'the cameras page with the notes for the guards');

  const tokyo = await loggedIn(env('OPERATOR_EMAIL'), '#console-view', { permissions: ['notifications'] });
  await tokyo.click('[data-lang="en"]');
  await tokyo.waitForSelector('#console-view[data-loaded="true"]');
  assert.equal(await tokyo.title(), 'eyeward');

  await page.click(`a[href="#camera/${env('CAMERA')}"]`);
  const first = await request(page);
  assert.equal(await page.textContent('#dispatch-address'), `The guard goes to: ${env('HOME_ADDRESS')}`);
  assert.ok(await page.isHidden('#dispatch-eta'), 'no guard, no time');

  // The console rings until the request is opened.
  await rang(tokyo, `New request ${first}`);
  await tokyo.screenshot({ path: join(OUT, 'console-ringing.png'), fullPage: true });
  await tokyo.click(`#console-queue li[data-request-id="${first}"] button`);
  await tokyo.waitForSelector('#console-ring', { state: 'hidden' });
  assert.equal(await tokyo.title(), 'eyeward');
  await tokyo.waitForSelector('#console-accept:not([hidden])');
  // The main action first, then what the customer told the guards, and the maps.
  const accept = await tokyo.locator('#console-accept').boundingBox();
  const facts = await tokyo.locator('#console-facts').boundingBox();
  assert.ok(accept.y < facts.y, 'the main action is above the details');
  assert.equal(await tokyo.getAttribute('#console-phone a', 'href'), 'tel:09012345678');
  assert.equal(await tokyo.textContent('#console-entry'), 'Side gate, code 4921');
  assert.equal(await tokyo.textContent('#console-key-holder'), 'Neighbour at no. 3, Mr Ito');
  assert.match(await tokyo.getAttribute('#console-location a', 'href'), /^https:\/\/www\.openstreetmap\.org\/\?mlat=35\.68&mlon=139\.76#map=17\//);
  await tokyo.waitForSelector('#console-guards li a.map-link');
  assert.equal(await tokyo.textContent('#console-guards li a.map-link'), 'Sato on the map');
  await checkA11y(tokyo, 'the console with a request open');
  await tokyo.click('#console-accept');
  await tokyo.waitForSelector('#console-assign-form:not([hidden])');
  await tokyo.click('#console-assign');

  // Sato is about 11 km away at 30 km/h: some 22 minutes.
  await page.waitForSelector('#dispatch-status[data-state="assigned"]');
  await page.waitForSelector('#dispatch-eta:not([hidden])');
  assert.match(await page.textContent('#dispatch-state'), /Sato/);
  const far = await minutesLeft(page);
  assert.ok(far >= 18 && far <= 26, `${far} min from 11 km`);
  await checkA11y(page, 'the customer page with a guard on the way');
  await page.screenshot({ path: join(OUT, 'on-the-way.png'), fullPage: true });

  // Sato drives on: the page says so without a reload.
  await report(35.70, 139.76);
  await page.waitForFunction((before) => {
    const m = document.getElementById('dispatch-eta').textContent.match(/in about (\d+) min/);
    return m && Number(m[1]) < before;
  }, far, { timeout: 10_000 });
  const near = await minutesLeft(page);
  assert.ok(near >= 3 && near <= 6, `${near} min from 2.2 km`);

  // Arrived, then completed with the report.
  await tokyo.waitForSelector('#console-arrive:not([hidden])');
  await tokyo.click('#console-arrive');
  await page.waitForSelector('#dispatch-status[data-state="arrived"]');
  assert.ok(await page.isHidden('#dispatch-eta'), 'arrived: no more estimate');
  await tokyo.waitForSelector('#console-complete-form:not([hidden])');
  // The report box is named by its label (in the operator's language).
  assert.match(await tokyo.textContent('label[for="console-report"]'), /Report for the customer|お客様への報告/);
  await tokyo.fill('#console-report', REPORT);
  await checkA11y(tokyo, 'the console with the completion report');
  await tokyo.screenshot({ path: join(OUT, 'console-report.png'), fullPage: true });
  await tokyo.click('#console-complete');
  await page.waitForSelector('#dispatch-status[data-state="completed"]');
  await page.waitForSelector('#dispatch-report:not([hidden])');
  assert.equal(await page.textContent('#dispatch-report h3'), 'Report from the guard center');
  assert.equal(await page.textContent('#dispatch-report-text'), REPORT);
  await checkA11y(page, 'the customer page with the report');
  await page.screenshot({ path: join(OUT, 'completed.png'), fullPage: true });

  // The same on a phone, in Japanese.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('[data-lang="ja"]');
  await page.waitForFunction(() => document.getElementById('dispatch-report').querySelector('h3').textContent === '警備センターからの報告');
  assert.equal(await page.textContent('#dispatch-report-text'), REPORT);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
  await checkA11y(page, 'the report in Japanese on a phone');
  await page.screenshot({ path: join(OUT, 'completed-phone-ja.png'), fullPage: true });

  // A second request, cancelled while Sato drives to it: the console rings again.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.click('[data-lang="en"]');
  const second = await request(page);
  await rang(tokyo, `New request ${second}`);
  await tokyo.click(`#console-queue li[data-request-id="${second}"] button`);
  await tokyo.waitForSelector('#console-accept:not([hidden])');
  await tokyo.click('#console-accept');
  await tokyo.waitForSelector('#console-assign-form:not([hidden])');
  await tokyo.click('#console-assign');
  await page.waitForSelector('#dispatch-status[data-state="assigned"]');
  page.once('dialog', (d) => d.accept());
  await page.click('#dispatch-cancel');
  await page.waitForSelector('#dispatch-status[data-state="cancelled"]');
  await rang(tokyo, `Request ${second} cancelled while Sato is on the way`);
  await tokyo.screenshot({ path: join(OUT, 'console-cancelled-ringing.png'), fullPage: true });
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, minutes: { far, near } }));
} finally {
  for (const b of browsers) await b.close();
}
