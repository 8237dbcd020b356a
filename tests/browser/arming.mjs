// Arming on the cameras page, as a customer does it. STEP=desktop (1366×800, English): the
// household starts Away; a tap on Home switches it (the tiles say which cameras stay quiet),
// Off is pressed with the keyboard, Home again; "Garden" is set to alert when home; a weekday
// schedule is added; the history shows the switches. STEP=phone (390×844, Japanese): the same
// panel in Japanese, the schedule removed with its button, Away tapped. Each state is checked
// with axe-core and kept as a screenshot. Run by tests/browser_arming.rs.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, collectProblems, env, launch, logIn } from './common.mjs';

const OUT = env('OUT_DIR');
const STEP = env('STEP');
mkdirSync(OUT, { recursive: true });

const phone = STEP === 'phone';
const browser = await launch({
  viewport: phone ? { width: 390, height: 844 } : { width: 1366, height: 800 },
  locale: phone ? 'ja-JP' : 'en-US',
  hasTouch: phone,
});
const problems = [];
try {
  const page = browser.ctx.pages()[0] ?? await browser.ctx.newPage();
  collectProblems(page, problems);
  await logIn(page);

  const mode = (m) => page.locator(`#arming .mode[data-mode="${m}"]`);
  const pressed = async (m) => (await mode(m).getAttribute('aria-pressed')) === 'true';
  const status = () => page.textContent('#arming-status');
  const tile = (name) => page.locator('#cameras .tile', { hasText: name });
  const quiet = (name) => tile(name).locator('.quiet');
  // Waits for the mode `m` to be shown as on.
  const waitMode = (m) => page.waitForSelector(`#arming .mode[data-mode="${m}"][aria-pressed="true"]`);

  if (!phone) {
    await waitMode('away');
    assert.match(await status(), /^Away: cameras set for Away mail alerts\.$/);
    assert.ok(await quiet('Porch').isHidden(), 'Away: Porch alerts');
    await checkA11y(page, 'the cameras page, Away');
    await page.screenshot({ path: join(OUT, 'desktop-away.png'), fullPage: true });

    // One tap: Home. Both cameras are quiet at home until told otherwise.
    await mode('home').click();
    await waitMode('home');
    assert.ok(!(await pressed('away')));
    assert.match(await status(), /^Home: only cameras set for Home mail alerts\. Switched .+ JST\.$/);
    await page.waitForSelector('#cameras .tile .quiet:not([hidden])');
    assert.equal(await quiet('Porch').textContent(), 'No alerts in this mode');
    assert.ok(await quiet('Garden').isVisible());

    // The keyboard: Off, with Space on the focused button.
    await mode('off').focus();
    await page.keyboard.press('Space');
    await waitMode('off');
    assert.match(await status(), /^Off: no alert mail\. Motion is still recorded\./);
    await mode('home').click();
    await waitMode('home');

    // Garden alerts when home too.
    await page.click('#arming-details summary');
    await checkA11y(page, 'the arming settings');
    const gardenHome = page.getByLabel('Garden: alert when home');
    assert.ok(!(await gardenHome.isChecked()));
    await gardenHome.check();
    await page.waitForFunction(() => {
      const t = [...document.querySelectorAll('#cameras .tile')].find((el) => el.textContent.includes('Garden'));
      return t && t.querySelector('.quiet').hidden;
    });
    assert.ok(await quiet('Porch').isVisible(), 'Porch stays quiet at home');

    // A schedule: Away on weekdays at 08:00.
    await page.click('#schedule-add');
    await page.waitForSelector('#schedule-error:not([hidden])');
    assert.equal(await page.textContent('#schedule-error'), 'Pick at least one day and a time.');
    for (const d of ['Mon', 'Tue', 'Wed', 'Thu', 'Fri']) await page.getByLabel(d, { exact: true }).check();
    await page.fill('#schedule-time', '08:00');
    await page.selectOption('#schedule-mode', 'away');
    await page.click('#schedule-add');
    await page.waitForSelector('#schedule li');
    assert.equal(await page.textContent('#schedule li span'), 'Mon Tue Wed Thu Fri 08:00 → Away');
    assert.ok(await page.locator('#schedule-error').isHidden());
    await page.waitForFunction(() => /Next: Away at .*8:00.* JST\./.test(document.getElementById('arming-status').textContent));
    await page.waitForFunction(() => document.getElementById('history').textContent.includes('Switched to Home'));
    const history = await page.textContent('#history');
    for (const want of ['Switched to Off', 'Camera alerts: Garden (away: on, home: on)',
      'Schedule added: Mon Tue Wed Thu Fri 08:00 → Away']) {
      assert.ok(history.includes(want), `history lacks ${want}: ${history}`);
    }
    await checkA11y(page, 'the arming settings with a schedule');
    await page.screenshot({ path: join(OUT, 'desktop-home-schedule.png'), fullPage: true });
  } else {
    // Japanese, on a phone: Home as left by the desktop, the schedule there.
    await page.click('[data-lang="ja"]');
    await page.waitForFunction(() => document.documentElement.lang === 'ja');
    await waitMode('home');
    assert.equal((await mode('away').textContent()).trim(), '外出');
    assert.equal((await mode('home').textContent()).trim(), '在宅');
    assert.equal((await mode('off').textContent()).trim(), 'オフ');
    assert.match(await status(), /^在宅：「在宅時」に設定したカメラだけが通知メールを送ります。[^ ].+ JSTに切替。次は.+ JSTに「外出」。$/);
    assert.equal(await quiet('Porch').textContent(), 'このモードでは通知なし');
    await page.click('#arming-details summary');
    assert.equal(await page.textContent('#schedule li span'), '月火水木金 08:00 →「外出」');
    const box = await mode('home').boundingBox();
    assert.ok(box.height >= 44 && box.width >= 44, `a mode button is ${box.width}×${box.height}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
    await checkA11y(page, 'the arming panel in Japanese on a phone');
    await page.screenshot({ path: join(OUT, 'phone-ja-home.png'), fullPage: true });

    await page.getByRole('button', { name: '月火水木金 08:00 →「外出」 を削除' }).click();
    await page.waitForSelector('#schedule-empty:not([hidden])');
    await mode('away').tap();
    await waitMode('away');
    assert.match(await status(), /^外出：「外出時」に設定したカメラが通知メールを送ります。/);
    assert.ok(await quiet('Porch').isHidden());
    await page.waitForFunction(() => document.getElementById('history').textContent.includes('警戒モードを「外出」に切替'));
    assert.ok((await page.textContent('#history')).includes('スケジュールを削除：月火水木金 08:00 →「外出」'));
    await checkA11y(page, 'the arming panel, Away, in Japanese');
    await page.screenshot({ path: join(OUT, 'phone-ja-away.png'), fullPage: true });
  }
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, step: STEP }));
} finally {
  await browser.close();
}
