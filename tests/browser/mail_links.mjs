// The links of real mails, opened in Chromium the way their reader does. STEP=confirm: the
// confirmation link shows a styled page whose button confirms the address. STEP=alert: an
// alert's "See this event" asks for a login, then shows the event (never raw JSON); its
// unsubscribe link's button stops the alerts. Run by tests/browser_mail_links.rs.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, env, launch } from './common.mjs';

const OUT = env('OUT_DIR');
const STEP = env('STEP');
mkdirSync(OUT, { recursive: true });

const browser = await launch();
const problems = [];
try {
  const page = browser.ctx.pages()[0] ?? await browser.ctx.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // The login page's own check of the session answers 401 before logging in.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });

  // A mailed link's page: the stylesheet applies (the card has its own background and
  // border), nothing is blocked by the page's policy, and pressing its button answers with a
  // page, not JSON.
  async function pressMailedButton(url, want, shot) {
    const blocked = [];
    page.on('console', (m) => { if (/Content Security Policy/.test(m.text())) blocked.push(m.text()); });
    const opened = await page.goto(url);
    assert.equal(opened.status(), 200);
    const card = await page.$eval('.card', (el) => {
      const s = getComputedStyle(el);
      return { border: s.borderTopStyle, radius: s.borderTopLeftRadius };
    });
    assert.deepEqual(card, { border: 'solid', radius: '12px' }, 'the page is not styled');
    await checkA11y(page, `${shot}'s page`);
    await page.screenshot({ path: join(OUT, `${shot}-page.png`) });
    const [answer] = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    assert.equal(answer.status(), 200, `pressing the button answered ${answer.status()}`);
    assert.match(answer.headers()['content-type'], /^text\/html/);
    assert.match(await page.textContent('h1'), want);
    await page.screenshot({ path: join(OUT, `${shot}-done.png`) });
    assert.deepEqual(blocked, []);
  }

  if (STEP === 'confirm') {
    await pressMailedButton(env('CONFIRM_URL'), /Address confirmed/, 'confirm');
    assert.match(await page.textContent('main'), new RegExp(`${env('ADDRESS')} now receives motion alerts`));
  } else {
    // "See this event": not logged in in this browser, so the login page first, then the
    // event itself.
    await page.goto(env('EVENT_URL'));
    await page.waitForSelector('#login-view:not([hidden])');
    await page.fill('#email', env('EMAIL'));
    await page.fill('#password', env('PASSWORD'));
    await page.click('#login-submit');
    await page.waitForSelector('#event-view:not([hidden])');
    assert.equal(await page.textContent('#event-camera'), env('CAMERA_NAME'));
    assert.match(await page.textContent('#event-at'), / JST$/);
    await page.waitForFunction(() => document.getElementById('event-picture').naturalWidth > 0);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'event-title', 'focus on the event');
    assert.equal(await page.getAttribute('#event-live', 'href'), `#camera/${env('CAMERA_ID')}`);
    await checkA11y(page, 'the event view');
    await page.screenshot({ path: join(OUT, 'event.png'), fullPage: true });
    // The one-click unsubscribe link, opened by a person: a page and a button.
    await pressMailedButton(env('UNSUBSCRIBE_URL'), /Alerts stopped/, 'unsubscribe');
  }
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, step: STEP }));
} finally {
  await browser.close();
}
