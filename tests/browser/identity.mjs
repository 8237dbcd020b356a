// The identity-check password in Chromium, the way its people use it. The customer (English)
// sets it from the account page's card: a wrong login password is refused there, the right
// one saves it, and the page then says it is set and the history names it. The operator
// (Japanese) checks a caller from the console: the customer number of an opened request is
// filled in by its button, the word as an input method types it (full-width) matches, a
// wrong one does not, and past the hour's checks the console says to call back later. The
// customer's history then shows each check with its result and the operator. Prints the
// results the console showed; run by tests/browser_identity.rs.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, collectProblems, env, launch, logIn } from './common.mjs';

const OUT = env('OUT_DIR');
const WORD = env('WORD');
const REQUEST = env('REQUEST_ID');
const CUSTOMER = env('CUSTOMER_ID');
mkdirSync(OUT, { recursive: true });
const browsers = [];
const problems = [];

// The console's answer line once it has one (not "checking…").
async function answer(page) {
  const line = page.locator('#identity-check-result');
  await page.waitForFunction(() => {
    const el = document.getElementById('identity-check-result');
    return el.textContent && !document.getElementById('identity-check-submit').disabled;
  });
  return { text: await line.textContent(), tone: await line.getAttribute('data-tone') };
}

async function check(page, word) {
  await page.fill('#identity-check-word', word);
  await page.click('#identity-check-submit');
  const got = await answer(page);
  assert.equal(await page.inputValue('#identity-check-word'), '', 'the word is not kept on screen');
  return got;
}

// Full-width forms, as a Japanese input method types the word the caller says.
const fullWidth = (s) => [...s].map((c) => (c === ' ' ? '\u3000'
  : c >= '!' && c <= '~' ? String.fromCharCode(c.charCodeAt(0) + 0xfee0) : c)).join('');

try {
  // The customer sets the word from the account page.
  const customer = await launch();
  browsers.push(customer);
  const page = customer.ctx.pages()[0] ?? await customer.ctx.newPage();
  collectProblems(page, problems, 'customer', /status of (401|403)/);
  await logIn(page, env('CUSTOMER_EMAIL'));
  await page.waitForSelector('#identity-number:text-is("' + CUSTOMER + '")');
  assert.equal(await page.textContent('#identity-state'), 'Not set yet.');
  await page.fill('#identity-word', WORD);
  await page.fill('#identity-login-password', 'not my password');
  await page.click('#identity-save');
  await page.waitForSelector('#identity-error:not([hidden])');
  assert.equal(await page.textContent('#identity-error'), 'That login password is wrong.');
  assert.equal(await page.inputValue('#identity-login-password'), '', 'the password is not kept');
  await page.fill('#identity-login-password', env('PASSWORD'));
  await page.click('#identity-save');
  await page.waitForSelector('#identity-status:text-matches("Saved")');
  assert.match(await page.textContent('#identity-state'), /^Set /);
  assert.equal(await page.inputValue('#identity-word'), '', 'the word is not kept on screen');
  assert.equal(await page.textContent('#identity-save'), 'Change the identity-check password');
  await page.waitForSelector('#history li:has-text("Identity-check password set")');
  await page.locator('#identity').screenshot({ path: join(OUT, 'customer-card.png') });
  await checkA11y(page, 'the cameras page with the identity card');

  // The operator, in Japanese, checks the caller from the console.
  const operator = await launch({ locale: 'ja-JP' });
  browsers.push(operator);
  const op = operator.ctx.pages()[0] ?? await operator.ctx.newPage();
  collectProblems(op, problems, 'operator', /status of (401|429)/);
  await logIn(op, env('OPERATOR_EMAIL'), '#console-view');
  await op.click('[data-lang="ja"]');
  await op.waitForSelector('#console-view[data-loaded="true"]');
  await op.click(`#console-queue li[data-request-id="${REQUEST}"] button`);
  await op.waitForSelector('#console-facts:not([hidden])');
  await op.click('#console-identity');
  assert.equal(await op.inputValue('#identity-check-customer'), CUSTOMER);
  assert.equal(await op.evaluate(() => document.activeElement.id), 'identity-check-word',
    'the word field takes the focus, ready for what the caller says');
  const results = {};
  results.match = await check(op, fullWidth(WORD.toUpperCase()));
  assert.equal(results.match.tone, 'ok');
  assert.match(results.match.text, /^一致/);
  results.noMatch = await check(op, `${WORD}x`);
  assert.deepEqual(results.noMatch, { text: '不一致', tone: 'bad' });
  await op.locator('.identity-check-card').screenshot({ path: join(OUT, 'console-check.png') });
  await checkA11y(op, 'the console with an identity check');
  // Three more wrong guesses use up the hour's five checks; the sixth is not made.
  for (let i = 0; i < 3; i += 1) assert.equal((await check(op, `guess ${i}`)).text, '不一致');
  results.usedUp = await check(op, WORD);
  assert.equal(results.usedUp.tone, 'bad');
  assert.match(results.usedUp.text, /かけ直して/);
  await op.locator('.identity-check-card').screenshot({ path: join(OUT, 'console-used-up.png') });

  // The customer's history names every check, its result and the operator.
  await page.reload();
  await page.waitForSelector('#cameras-view:not([hidden])');
  const history = page.locator('#history li');
  await page.waitForSelector('#history li:has-text("checked the identity-check password: match")');
  const texts = await history.allTextContents();
  const checks = texts.filter((t) => t.includes('checked the identity-check password'));
  assert.equal(checks.filter((t) => t.includes(': match')).length, 1, texts.join('\n'));
  assert.equal(checks.filter((t) => t.includes(': no match')).length, 4, texts.join('\n'));
  assert.equal(checks.filter((t) => t.includes('too many checks')).length, 1, texts.join('\n'));
  assert.ok(checks.every((t) => t.includes(env('OPERATOR_NAME'))), texts.join('\n'));
  await page.locator('#history').screenshot({ path: join(OUT, 'customer-history.png') });

  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, results }));
} finally {
  for (const b of browsers) await b.close();
}
