// The guard's phone in Chromium, with the console and the customer's page open beside it.
// The operator (desktop, English) issues Sato's sign-in link from the console: a QR code and
// the URL. The guard opens it on a 390×844 touch phone in Japanese whose position is faked;
// the phone shows the assignment (address, navigation link, note, how to get in, the shared
// picture) and sends its position. "出発します" (on my way), "到着しました" (arrived: its first
// answer is lost on the way, so the phone sends it again) and "対応完了" (done) with a report:
// each step shows on the customer's page and in the console without a reload, and moving
// the phone nearer brings the customer's estimated arrival forward. After completion the
// phone shows nothing of the customer, and the assignment and its picture answer 404. Last
// the operator signs the phone out and the phone's page ends its session: prints how long
// that took. Run by tests/browser_guard_phone.rs.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, collectProblems, env, launch, logIn } from './common.mjs';

const OUT = env('OUT_DIR');
const GUARD = env('GUARD_ID');
const REQUEST = env('REQUEST_ID');
mkdirSync(OUT, { recursive: true });
const browsers = [];
const problems = [];
const FAR = { latitude: 35.7400, longitude: 139.7600 };   // 6.7 km north of the home
const NEAR = { latitude: 35.6850, longitude: 139.7600 };  // 0.6 km

// The minutes the customer's list says the guard is away ("in about N min").
const ETA = `#dispatch-list li[data-request-id="${REQUEST}"] .eta`;
async function etaMinutes(page) {
  const text = await page.textContent(ETA);
  const m = text.match(/about (\d+) min/);
  assert.ok(m, `no estimate in "${text}"`);
  return Number(m[1]);
}

try {
  // The operator issues the link from the console.
  const opBrowser = await launch();
  browsers.push(opBrowser);
  const op = opBrowser.ctx.pages()[0] ?? await opBrowser.ctx.newPage();
  collectProblems(op, problems, 'operator');
  await logIn(op, env('OPERATOR_EMAIL'), '#console-view');
  await op.waitForSelector('#console-view[data-loaded="true"]');
  const row = op.locator(`#console-guards li[data-guard-id="${GUARD}"]`);
  await row.locator('button.sign-in-link').click();
  await op.waitForSelector('#sign-in-link-dialog[open] #sign-in-link-qr svg');
  const url = await op.inputValue('#sign-in-link-url');
  assert.match(url, /\/guard\.html#ewg_[\w-]+$/);
  await op.locator('#sign-in-link-dialog').screenshot({ path: join(OUT, 'console-link.png') });
  await checkA11y(op, 'the console with a sign-in link');
  await op.click('#sign-in-link-close');
  // The operator keeps the request open in the console, to see it follow.
  await op.click(`#console-queue li[data-request-id="${REQUEST}"] button`);
  await op.waitForSelector('#console-detail:not([hidden])');

  // The customer's page, open on the request.
  const customerBrowser = await launch();
  browsers.push(customerBrowser);
  const customer = customerBrowser.ctx.pages()[0] ?? await customerBrowser.ctx.newPage();
  collectProblems(customer, problems, 'customer');
  await logIn(customer, env('CUSTOMER_EMAIL'));
  await customer.waitForSelector(`#dispatch-list li:has-text("Guard sent (Sato)")`);

  // The guard's phone.
  const phoneBrowser = await launch({
    viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: 'ja-JP',
    permissions: ['geolocation'], geolocation: FAR,
  });
  browsers.push(phoneBrowser);
  const phone = phoneBrowser.ctx.pages()[0] ?? await phoneBrowser.ctx.newPage();
  collectProblems(phone, problems, 'phone', /status of (401|404)|ERR_FAILED/);
  await phone.goto(url);
  await phone.waitForSelector('#guard-assignment:not([hidden])');
  assert.equal(new URL(phone.url()).hash, '', 'the token leaves the address bar');
  assert.equal(await phone.textContent('#guard-name'), 'Sato');
  assert.equal(await phone.textContent('#guard-address'), env('HOME'));
  assert.match(await phone.getAttribute('#guard-map', 'href'), /^geo:35\.68,139\.76\?q=35\.68,139\.76/);
  assert.equal(await phone.textContent('#guard-note'), env('NOTE'));
  assert.equal(await phone.textContent('#guard-entry'), env('ENTRY'));
  await phone.waitForFunction(() => document.getElementById('guard-snapshot').naturalWidth === 320);
  assert.equal(await phone.textContent('#guard-depart'), '出発します');
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `the page fits the phone's width: ${width}px`);
  await phone.screenshot({ path: join(OUT, 'phone-assignment.png'), fullPage: true });
  await checkA11y(phone, 'the guard\'s phone with an assignment');

  // On my way: the customer's page and the console follow.
  await phone.tap('#guard-depart');
  await phone.waitForSelector('#guard-assignment[data-state="en_route"]');
  await customer.waitForSelector(`#dispatch-list li:has-text("Guard on the way (Sato)")`);
  await op.waitForSelector('#console-detail[data-state="en_route"]');
  // The phone's position from far, then near: the customer's estimate comes forward.
  await customer.waitForSelector(ETA);
  const far = await etaMinutes(customer);
  await phoneBrowser.ctx.setGeolocation(NEAR);
  await customer.waitForFunction(([selector, far]) => {
    const el = document.querySelector(selector);
    const m = el && el.textContent.match(/about (\d+) min/);
    return m && Number(m[1]) < far;
  }, [ETA, far], { timeout: 20_000 });
  const near = await etaMinutes(customer);
  await customer.screenshot({ path: join(OUT, 'customer-on-the-way.png') });

  // Arrived, with the first answer lost on the way: the phone sends it again.
  let lost = 0;
  await phone.route(`**/guard/v1/assignments/${REQUEST}/arrive`, async (route) => {
    if (lost === 0) {
      lost += 1;
      await route.fetch();       // the relay takes the step...
      await route.abort('failed'); // ...and the phone never hears it
    } else {
      await route.continue();
    }
  });
  await phone.tap('#guard-arrive');
  await phone.waitForSelector('#guard-assignment[data-state="arrived"]');
  assert.equal(lost, 1);
  assert.equal(await phone.isHidden('#guard-error'), true, 'the step sent again is not an error');
  await customer.waitForSelector(`#dispatch-list li:has-text("Guard arrived")`);
  await op.waitForSelector('#console-detail[data-state="arrived"]');

  // Done, with a report; then nothing of the customer stays on the phone.
  await phone.fill('#guard-report', 'All quiet; a cat at the back window');
  await phone.tap('#guard-complete');
  await phone.waitForSelector('#guard-closed:not([hidden])');
  assert.equal(await phone.isHidden('#guard-assignment'), true);
  const shown = await phone.evaluate(() => document.body.innerText);
  for (const secret of [env('HOME'), env('NOTE'), env('ENTRY'), 'Alice', '090-1234-5678']) {
    assert.ok(!shown.includes(secret), `"${secret}" stays on the phone`);
  }
  assert.equal(await phone.getAttribute('#guard-snapshot', 'src'), null, 'the picture is gone');
  const after = await phone.evaluate(async (id) => Promise.all([
    `/guard/v1/assignments/${id}`, `/guard/v1/assignments/${id}/snapshot`,
  ].map(async (p) => (await fetch(p)).status)), REQUEST);
  assert.deepEqual(after, [404, 404]);
  await phone.screenshot({ path: join(OUT, 'phone-done.png') });
  await customer.waitForSelector(`#dispatch-list li[data-request-id="${REQUEST}"][data-state="completed"]`);
  await op.waitForSelector('#console-detail[data-state="completed"]');

  // The operator signs the phone out: its page ends within seconds.
  await op.waitForSelector(`#console-guards li[data-guard-id="${GUARD}"] button.sign-out-phone`);
  const revokedAt = Date.now();
  await row.locator('button.sign-out-phone').click();
  await phone.waitForSelector('#guard-signed-out:not([hidden])', { timeout: 10_000 });
  const revokedWithinMs = Date.now() - revokedAt;
  await phone.screenshot({ path: join(OUT, 'phone-signed-out.png') });

  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, far, near, revokedWithinMs }));
} finally {
  for (const b of browsers) await b.close();
}
