// Drives Debian's headless Chromium through the web shell as a customer would: log in, see
// their own cameras (and nothing of anyone else's), switch language, use a phone-sized screen,
// log out; then an operator logs in. Run by tests/browser_shell.rs, which starts the relay and
// provisions the accounts; settings come from the environment.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, env, launch } from './common.mjs';

const BASE = env('BASE_URL');
const OUT = env('OUT_DIR');
const OWN = JSON.parse(env('OWN_CAMERAS'));
const FOREIGN = JSON.parse(env('FOREIGN_CAMERAS'));
mkdirSync(OUT, { recursive: true });

const browser = await launch();
const { ctx } = browser;
const problems = [];
try {
  const page = ctx.pages()[0] ?? await ctx.newPage();
  page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss(); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // Chromium logs every 4xx answer as a console error; the expected 401s (logged out, wrong
  // password) and the 400 of the bad alert address below are not problems, anything else is.
  page.on('console', (m) => {
    const expected = /status of (401|400)/.test(m.text());
    if (m.type() === 'error' && !expected) problems.push(`console: ${m.text()}`);
  });

  const visible = (sel) => page.waitForSelector(`${sel}:not([hidden])`, { timeout: 10_000 });
  const heading = (view) => page.textContent(`#${view} h1`);
  const lang = () => page.getAttribute('html', 'lang');

  // An English browser sees the login page in English.
  await page.goto(BASE);
  await visible('#login-view');
  assert.equal(await lang(), 'en');
  assert.equal(await heading('login-view'), 'Log in');
  await checkA11y(page, 'the login page');

  // A wrong password is told plainly.
  await page.fill('#email', env('EMAIL'));
  await page.fill('#password', 'not the password');
  await page.click('#login-submit');
  await visible('#login-error');
  assert.equal(await page.textContent('#login-error'), 'Wrong email address or password.');

  // The right one shows the customer's cameras, in the customer's language (Japanese).
  await page.fill('#password', env('PASSWORD'));
  await page.click('#login-submit');
  await visible('#cameras-view');
  await page.waitForFunction(() => document.documentElement.lang === 'ja');
  assert.equal(await heading('cameras-view'), 'カメラ一覧');
  const names = await page.$$eval('#cameras .camera-name', (els) => els.map((e) => e.textContent));
  assert.deepEqual(names, OWN);
  for (const f of FOREIGN) assert.ok(!(await page.content()).includes(f), `foreign camera ${f} shown`);
  assert.equal(await page.textContent('#cameras .status-text'), 'オフライン');
  // Markup in a camera name stays text: no element was made from it, no script ran.
  assert.equal(await page.$$eval('#cameras img', (els) => els.length), 0);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  const history = await page.$$eval('#history li .what', (els) => els.map((e) => e.textContent));
  assert.ok(history.includes('新しいブラウザからログイン'), `history: ${history}`);
  // The focus moved to the cameras' heading, so a screen reader says where the person is.
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'カメラ一覧');
  await checkA11y(page, 'the cameras view (ja)');
  // Times say their zone, the home's (JST), as the mails do.
  assert.match(await page.textContent('#history li time'), / JST$/);
  // The relay's errors are said in the page's language: a bad address, in Japanese.
  await page.fill('#alert-email', 'not an address');
  await page.click('#alert-add');
  await visible('#alert-error');
  assert.equal(await page.textContent('#alert-error'), 'メールアドレスの形式ではありません。');
  await page.fill('#alert-email', '');
  await page.screenshot({ path: join(OUT, 'cameras-ja.png'), fullPage: true });

  // Switching to English changes every word and is saved for the account.
  const saved = page.waitForResponse((r) => r.url().endsWith('/api/me') && r.request().method() === 'PATCH');
  await page.click('button[data-lang="en"]');
  assert.equal((await saved).status(), 200);
  assert.equal(await lang(), 'en');
  assert.equal(await heading('cameras-view'), 'Your cameras');
  // The list is drawn again in English once the account's language is saved.
  await page.waitForFunction(() => document.querySelector('#cameras .status-text')?.textContent === 'Offline');
  assert.equal(await page.textContent('#logout'), 'Log out');
  await page.reload();
  await visible('#cameras-view');
  assert.equal(await heading('cameras-view'), 'Your cameras');
  await page.screenshot({ path: join(OUT, 'cameras-en.png'), fullPage: true });

  // Alert mail addresses: one added waits for its confirmation; a bad one is refused in
  // words; removing takes it off the list.
  await page.fill('#alert-email', 'family@example.jp');
  await page.click('#alert-add');
  await page.waitForFunction(() => document.querySelector('#alert-addresses .email')?.textContent === 'family@example.jp');
  assert.equal(await page.textContent('#alert-addresses .badge'), 'waiting for confirmation (link mailed)');
  // Recent activity follows without a reload.
  await page.waitForFunction(() => [...document.querySelectorAll('#history li .what')]
    .some((e) => e.textContent === 'Alert address added: family@example.jp'), null, { timeout: 10_000 });
  await page.fill('#alert-email', 'not an address');
  await page.click('#alert-add');
  await visible('#alert-error');
  assert.match(await page.textContent('#alert-error'), /not an email address/);
  await page.screenshot({ path: join(OUT, 'alert-addresses.png'), fullPage: true });
  await page.click('#alert-addresses button[aria-label="Remove family@example.jp"]');
  await page.waitForFunction(() => !document.querySelector('#alert-addresses .email'));
  // The other mails are on by default and switch off for the account.
  assert.equal(await page.isChecked('#notify-operations'), true);
  const switched = page.waitForResponse((r) => r.url().endsWith('/api/mail-settings') && r.request().method() === 'PUT');
  await page.uncheck('#notify-operations');
  assert.equal((await switched).status(), 200);
  assert.deepEqual(await page.evaluate(async () => (await fetch('/api/mail-settings')).json()), { offline: true, operations: false, ptz: false });

  // A phone-sized screen: nothing spills sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than a phone`);
  await checkA11y(page, 'the cameras view on a phone');
  await page.screenshot({ path: join(OUT, 'cameras-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  // Logging out ends the session on the server.
  await page.click('#logout');
  await visible('#login-view');
  assert.equal(await page.evaluate(async () => (await fetch('/api/me')).status), 401);
  await page.screenshot({ path: join(OUT, 'login.png') });

  // An operator sees their guard center, not customers' cameras.
  await page.fill('#email', env('OPERATOR_EMAIL'));
  await page.fill('#password', env('PASSWORD'));
  await page.click('#login-submit');
  await visible('#console-view');
  assert.equal(await page.textContent('#operator-center'), env('OPERATOR_CENTER_TEXT'));
  assert.equal(await page.$$eval('#cameras li', (els) => els.length), 0);
  await checkA11y(page, 'the guard-center console');
  await page.screenshot({ path: join(OUT, 'operator.png') });

  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, cameras: names, screenshots: OUT }));
} finally {
  await browser.close();
}
