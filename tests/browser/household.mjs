// The household in Chromium (run by tests/browser_household.rs). STEP=invite: the holder
// invites Hana from the household card, giving Porch's "watch live" and "events". STEP=join:
// Hana opens the mailed link in her own browser, chooses a password, and sees Porch alone,
// live, with neither the pan-tilt pad nor the speaker, and none of the holder's settings;
// the holder gives her "move" from the card, and the pad appears on her page. STEP=remove:
// the holder removes her with the card's button, accepting its confirmation.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, collectProblems, env, liveBrowser, logIn, waitPlaying } from './common.mjs';

const OUT = env('OUT_DIR');
const STEP = env('STEP');
const PORCH = env('PORCH');
const GARDEN = env('GARDEN');
mkdirSync(OUT, { recursive: true });

const browsers = [];
const problems = [];

// The holder's page, logged in, on the cameras view with the household card.
async function holderPage() {
  const ctx = await liveBrowser(browsers);
  const page = ctx.pages()[0] ?? await ctx.newPage();
  collectProblems(page, problems, 'holder');
  await logIn(page);
  await page.waitForSelector('#household:not([hidden])');
  return page;
}

// The checkbox of `right` on camera `camera` in the household form.
const box = (camera, right) => `#household-rights input[name="${camera}:${right}"]`;

try {
  if (STEP === 'remove') {
    const page = await holderPage();
    page.once('dialog', (d) => d.accept());
    await page.locator('#household-members li', { hasText: 'Hana' })
      .getByRole('button', { name: 'Remove Hana from the household' }).click();
    await page.waitForSelector('#household-empty:not([hidden])');
    await page.waitForFunction(() => /Removed Hana from the household/.test(document.getElementById('history').textContent), null, { timeout: 10_000 });
  } else if (STEP === 'invite') {
    const page = await holderPage();
    await page.fill('#household-name', 'Hana');
    await page.fill('#household-email', 'hana@example.jp');
    await page.selectOption('#household-lang', 'en');
    // Moving needs watching: ticking it ticks watch; unticking watch takes it away again.
    await page.check(box(PORCH, 'move'));
    assert.equal(await page.isChecked(box(PORCH, 'watch')), true);
    await page.uncheck(box(PORCH, 'watch'));
    assert.equal(await page.isChecked(box(PORCH, 'move')), false);
    await page.check(box(PORCH, 'watch'));
    await page.check(box(PORCH, 'events'));
    await page.check(box(PORCH, 'alerts'));
    // Garden is camera-only: no guard to request.
    assert.equal(await page.isDisabled(box(GARDEN, 'dispatch')), true);
    await checkA11y(page, 'the household card');
    await page.click('#household-submit');
    await page.waitForFunction(() => /Invitation sent to hana@example\.jp/.test(document.getElementById('household-status').textContent));
    await page.waitForSelector('#household-invitations li');
    const pending = await page.textContent('#household-invitations');
    assert.match(pending, /Hana <hana@example\.jp>/);
    assert.match(pending, /Invited: the link works until/);
    await page.screenshot({ path: join(OUT, 'invited.png'), fullPage: true });
  } else {
    // Hana, in a browser of her own, from the mailed link.
    const ctx = await liveBrowser(browsers);
    const page = ctx.pages()[0] ?? await ctx.newPage();
    collectProblems(page, problems, 'member');
    await page.goto(env('INVITE_URL'));
    await page.waitForSelector('#invite-view:not([hidden])');
    assert.match(await page.textContent('#invite-lead'), /Alice invites you, Hana, to watch over their home/);
    assert.equal(await page.textContent('#invite-email'), 'hana@example.jp');
    assert.match(await page.textContent('#invite-cameras'), /Porch Watch live, Events and clips, Alert mail/);
    await checkA11y(page, 'the invitation');
    await page.screenshot({ path: join(OUT, 'invitation.png') });
    await page.fill('#invite-password', 'hana’s own password');
    await page.fill('#invite-password-again', 'something else');
    await page.click('#invite-join');
    assert.equal(await page.textContent('#invite-error'), 'The two passwords differ.');
    await page.fill('#invite-password-again', 'hana’s own password');
    await page.click('#invite-join');
    await page.waitForSelector('#cameras-view:not([hidden])');
    assert.equal(await page.evaluate(() => location.hash), '', 'the token left the address bar');
    assert.equal(await page.textContent('#who'), 'Hana');
    const tiles = await page.$$eval('#cameras li', (els) => els.map((e) => e.dataset.cameraId));
    assert.deepEqual(tiles, [PORCH], 'only the camera she was given');
    for (const id of ['arming', 'household']) {
      assert.equal(await page.isHidden(`#${id}`), true, `#${id} is the holder's`);
    }
    assert.equal(await page.isHidden('#history'), true, 'the history is the holder\'s');
    // Her own alert addresses (she was given alert mail), not the holder's notices.
    assert.equal(await page.isVisible('#alert-form'), true, 'her alert addresses');
    assert.equal(await page.isHidden('#notify-offline'), true, 'the notices are the holder\'s');
    await page.fill('#alert-email', 'hana-phone@example.jp');
    await page.click('#alert-add');
    await page.waitForSelector('#alert-addresses li[data-address-id]');
    assert.match(await page.textContent('#alert-addresses'), /hana-phone@example\.jp/);
    await checkA11y(page, 'the member\'s cameras');
    await page.screenshot({ path: join(OUT, 'member-cameras.png'), fullPage: true });

    await page.click(`a[href="#camera/${PORCH}"]`);
    await page.waitForSelector('#live-view:not([hidden])');
    await waitPlaying(page, 20_000);
    assert.equal(await page.isHidden('#ptz'), true, 'no pan-tilt pad without move');
    assert.equal(await page.isHidden('#talk'), true, 'no speaker without speak');
    assert.equal(await page.isVisible('#live-events'), true, 'her events');
    assert.equal(await page.isVisible('#dispatch'), false, 'no guard request without dispatch');
    await page.screenshot({ path: join(OUT, 'member-live.png') });

    // The holder's page: Hana joined, in the history; then she is given "move".
    const holder = await holderPage();
    await holder.waitForFunction(() => /Joined the household/.test(document.getElementById('history').textContent));
    const entry = await holder.$$eval('#history li', (lis) => lis.map((li) => li.textContent).find((t) => /Joined the household/.test(t)));
    assert.match(entry, /Hana · via /);
    const member = holder.locator('#household-members li', { hasText: 'Hana' });
    assert.match(await member.textContent(), /Porch: Watch live, Events and clips, Alert mail/);
    await member.getByRole('button', { name: 'Change what Hana may do' }).click();
    assert.equal(await holder.isChecked(box(PORCH, 'events')), true);
    await holder.check(box(PORCH, 'move'));
    await holder.click('#household-submit');
    await holder.waitForFunction(() => /Hana’s rights are changed/.test(document.getElementById('household-status').textContent));
    await holder.waitForFunction(() => /Porch: Watch live, Events and clips, Move, Alert mail/.test(document.getElementById('household-members').textContent));
    // Her address is hers: not in the holder's list.
    assert.doesNotMatch(await holder.textContent('#alert-addresses'), /hana-phone/);
    await holder.screenshot({ path: join(OUT, 'holder.png'), fullPage: true });

    // Her page, loaded again, gives her the pad.
    await page.reload();
    await page.waitForSelector('#live-view:not([hidden])');
    await page.waitForSelector('#ptz:not([hidden])', { timeout: 10_000 });
    await waitPlaying(page, 20_000);
  }
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, step: STEP }));
} finally {
  for (const b of browsers) await b.close();
}
