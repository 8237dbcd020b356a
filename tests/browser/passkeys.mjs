// Passkeys in Chromium (run by tests/browser_passkeys.rs), each browser with a virtual
// authenticator of the DevTools protocol's WebAuthn domain: a platform authenticator that
// keeps discoverable credentials and verifies its user at once.
// STEP=customer: Alice logs in by password, registers a passkey from the Passkeys card, logs
// out and in again with the login page's passkey button; removes the passkey from the card,
// and the same passkey is then refused at the login page.
// STEP=operator (his pages are in Japanese, the operators' language): Oscar logs in by password and meets the gate, not the console (the console's
// API refuses him too); he registers a passkey there and the console opens; a password login
// is then held at the gate until his passkey answers; the passkey button alone opens it.
// Then the administrator removes Oscar's passkeys (`admin operator remove-passkeys`, as after
// an identity check): his session ends, the authenticator's passkey is refused, and a password
// login meets the register gate again.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, collectProblems, env, launch, logIn } from './common.mjs';

const OUT = env('OUT_DIR');
const STEP = env('STEP');
mkdirSync(OUT, { recursive: true });

const browsers = [];
const problems = [];

// A page of a new browser with a virtual authenticator; the DevTools session to ask it what
// it holds.
async function pageWithAuthenticator(who, expected) {
  const b = await launch({ args: ['--host-resolver-rules=MAP localhost 127.0.0.1'] });
  browsers.push(b);
  const page = b.ctx.pages()[0] ?? await b.ctx.newPage();
  collectProblems(page, problems, who, expected);
  const cdp = await b.ctx.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  const credentials = async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
  return { page, credentials };
}

const textOf = (page, id) => page.evaluate((i) => document.getElementById(i).textContent, id);

async function logOut(page) {
  await page.click('#logout');
  await page.waitForSelector('#login-view:not([hidden])');
}

// The login page's passkey button, pressed; waits for `view`.
async function passkeyLogIn(page, view) {
  await page.waitForSelector('#login-passkey:not([hidden])');
  await page.click('#login-passkey');
  await page.waitForSelector(`${view}:not([hidden])`);
}

// What the console's own API answers this page's session.
const consoleAnswer = (page) => page.evaluate(async () => {
  const r = await fetch('/api/ops/dispatch-requests');
  return { status: r.status, body: await r.json() };
});

try {
  if (STEP === 'customer') {
    const { page, credentials } = await pageWithAuthenticator('alice', /status of 401/);
    await logIn(page, env('CUSTOMER'));
    await page.waitForSelector('#passkeys:not([hidden])');
    assert.equal(await page.isVisible('#passkeys-empty'), true);
    await checkA11y(page, 'the passkeys card');
    await page.fill('#passkey-name', 'Laptop');
    await page.click('#passkey-add');
    await page.waitForFunction(() => /Passkey “Laptop” registered/.test(document.getElementById('passkeys-status').textContent));
    await page.waitForSelector('#passkeys-list li[data-passkey-id]');
    assert.match(await textOf(page, 'passkeys-list'), /Laptop/);
    const held = await credentials();
    assert.equal(held.length, 1, 'the authenticator holds one credential');
    assert.equal(held[0].isResidentCredential, true, 'a discoverable one');
    await page.screenshot({ path: join(OUT, 'customer-card.png'), fullPage: true });

    // Out, and in again with the passkey alone: no address typed.
    await logOut(page);
    await page.fill('#email', '');
    await passkeyLogIn(page, '#cameras-view');
    assert.equal(await textOf(page, 'who'), 'Alice');
    await page.waitForFunction(() => /Logged in with a passkey/.test(document.getElementById('history').textContent), null, { timeout: 10_000 });
    assert.match(await textOf(page, 'history'), /Passkey registered: Laptop/);

    // Removed from the card, it no longer opens the account.
    await page.waitForSelector('#passkeys-list li[data-passkey-id]');
    page.once('dialog', (d) => d.accept());
    await page.getByRole('button', { name: 'Remove the passkey Laptop' }).click();
    await page.waitForSelector('#passkeys-empty:not([hidden])');
    await page.waitForFunction(() => /Passkey removed: Laptop/.test(document.getElementById('history').textContent), null, { timeout: 10_000 });
    await logOut(page);
    await page.waitForSelector('#login-passkey:not([hidden])');
    await page.click('#login-passkey');
    await page.waitForSelector('#login-error:not([hidden])');
    assert.match(await textOf(page, 'login-error'), /This passkey is not known here/);
    assert.equal(await page.isVisible('#login-view'), true);
    await page.screenshot({ path: join(OUT, 'customer-refused.png') });
  } else if (STEP === 'operator') {
    const { page, credentials } = await pageWithAuthenticator('oscar', /status of (401|403)/);
    await logIn(page, env('OPERATOR'), '#passkey-gate-view');
    assert.equal(await page.isHidden('#console-view'), true);
    assert.match(await textOf(page, 'passkey-gate-lead'), /パスキーが必要です/);
    const refused = await consoleAnswer(page);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, 'passkey_needed');
    await checkA11y(page, 'the passkey gate');
    await page.screenshot({ path: join(OUT, 'operator-gate.png') });
    await page.fill('#passkey-gate-name', 'Desk');
    await page.click('#passkey-gate-submit');
    await page.waitForSelector('#console-view:not([hidden])');
    await page.waitForSelector('#console-view #passkeys:not([hidden]) li[data-passkey-id]');
    assert.match(await textOf(page, 'passkeys-list'), /Desk/);
    assert.equal((await consoleAnswer(page)).status, 200);
    assert.equal((await credentials()).length, 1);

    // A password alone is held at the gate until the passkey answers.
    await logOut(page);
    await logIn(page, env('OPERATOR'), '#passkey-gate-view');
    assert.match(await textOf(page, 'passkey-gate-lead'), /パスキーでの確認後に開きます/);
    assert.equal(await page.isHidden('#passkey-gate-new'), true);
    assert.equal((await consoleAnswer(page)).status, 403);
    await page.click('#passkey-gate-submit');
    await page.waitForSelector('#console-view:not([hidden])');

    // The passkey alone opens the console.
    await logOut(page);
    await passkeyLogIn(page, '#console-view');
    assert.equal(await page.isHidden('#passkey-gate-view'), true);
    assert.equal((await consoleAnswer(page)).status, 200);
    await page.screenshot({ path: join(OUT, 'operator-console.png') });

    // The administrator's reset (all passkeys lost): the authenticator's passkey is refused,
    // and a password login meets the register gate again.
    const reset = JSON.parse(execFileSync(env('RELAY_BIN'), ['admin', '--config', env('RELAY_CONFIG'),
      'operator', 'remove-passkeys', '--id', env('OPERATOR_ID'), '--json'], { encoding: 'utf8' }));
    assert.equal(reset.passkeys_removed, true);
    assert.equal((await consoleAnswer(page)).status, 401, 'the reset ended his session');
    await page.reload();
    await page.waitForSelector('#login-passkey:not([hidden])');
    await page.click('#login-passkey');
    await page.waitForSelector('#login-error:not([hidden])');
    assert.match(await textOf(page, 'login-error'), /このパスキーは登録されていません/);
    await logIn(page, env('OPERATOR'), '#passkey-gate-view');
    assert.match(await textOf(page, 'passkey-gate-lead'), /パスキーが必要です/);
    assert.equal(await page.isVisible('#passkey-gate-new'), true);
  }
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, step: STEP }));
} finally {
  for (const b of browsers) await b.close();
}
