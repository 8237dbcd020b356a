// All cameras live in Chromium: "Watch all" on the cameras page opens a tile per camera; the
// two online ones decode frames side by side, the one without its agent says offline; a click
// on a tile opens that camera's live view; going back to the list closes the grid's sessions.
// Then the grid on a phone in Japanese. Run by tests/browser_grid.rs.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, collectProblems, env, liveBrowser, logIn } from './common.mjs';

const OUT = env('OUT_DIR');
mkdirSync(OUT, { recursive: true });

const browsers = [];
const problems = [];
try {
  const ctx = await liveBrowser(browsers);
  const page = ctx.pages()[0] ?? await ctx.newPage();
  // 409: the camera without its agent.
  collectProblems(page, problems, 'customer', /status of (401|409)/);
  await logIn(page);
  await page.click('[data-lang="en"]');
  await page.click('#watch-all');
  await page.waitForSelector('#grid-view:not([hidden])');
  const tile = (name) => page.locator('#grid-tiles li', { hasText: name });

  // Both online cameras play at once: each tile's own video decodes frames.
  const started = Date.now();
  for (const name of ['Porch', 'Garden']) {
    await tile(name).locator('[data-status="live"]').waitFor({ timeout: 15_000 });
  }
  const firstFrames = Date.now() - started;
  const frames = await page.evaluate(() => Promise.all([...document.querySelectorAll('#grid-tiles video')]
    .filter((v) => !v.hidden)
    .map((v) => new Promise((resolve) => {
      let n = 0;
      const tick = () => { n += 1; v.requestVideoFrameCallback(tick); };
      v.requestVideoFrameCallback(tick);
      setTimeout(() => resolve(n), 1500);
    }))));
  assert.equal(frames.length, 2, 'two videos play');
  assert.ok(frames.every((n) => n >= 5), `frames in 1.5 s: ${frames}`);
  // The camera without its agent looks offline.
  assert.equal(await tile('Garage').getAttribute('data-status'), 'offline');
  assert.equal(await tile('Garage').locator('.grid-badge').textContent(), 'Offline');
  await checkA11y(page, 'the live grid');
  await page.screenshot({ path: join(OUT, 'grid.png') });

  // A click enlarges one camera.
  await tile('Garden').locator('a').click();
  await page.waitForSelector('#live-view:not([hidden])');
  assert.equal(await page.textContent('#live-name'), 'Garden');
  assert.equal(await page.$$eval('#grid-tiles video', (vs) => vs.length), 0, 'the grid closed its sessions');

  // Back to the grid, on a phone, in Japanese.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('[data-lang="ja"]');
  await page.evaluate(() => { location.hash = '#grid'; });
  await page.waitForSelector('#grid-view:not([hidden])');
  assert.equal(await page.textContent('#grid-title'), '全カメラのライブ');
  await tile('Porch').locator('[data-status="live"]').waitFor({ timeout: 15_000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the grid is ${overflow}px wider than the phone`);
  await checkA11y(page, 'the live grid in Japanese on a phone');
  await page.screenshot({ path: join(OUT, 'grid-phone-ja.png'), fullPage: true });
  await page.click('#grid-view .back');
  await page.waitForSelector('#cameras-view:not([hidden])');
  assert.equal(await page.$$eval('#grid-tiles video', (vs) => vs.length), 0);
  assert.deepEqual(problems, []);
  console.log(JSON.stringify({ ok: true, first_frames_ms: firstFrames, frames }));
} finally {
  for (const b of browsers) await b.close();
}
