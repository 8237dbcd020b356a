// Setting where a guard is on the console's map, in Chromium: on a desktop in English the
// operator clicks the place for Sato, then for Suzuki moves the map from the keyboard (arrow
// keys) and marks its centre; on a phone in Japanese the operator taps a place for Sato.
// Each time the dialog says what is marked, the guard's row shows the new place, and axe
// finds nothing serious. Prints the places marked; run by tests/browser_guard_map.rs.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkA11y, collectProblems, env, launch, logIn } from './common.mjs';

const OUT = env('OUT_DIR');
const SATO = env('SATO');
const SUZUKI = env('SUZUKI');
const ZOOM = 16;
mkdirSync(OUT, { recursive: true });
const browsers = [];
const problems = [];

// The place `dx`, `dy` pixels from `at` on a Web Mercator map at zoom `z` (256-pixel tiles).
function offset(at, z, dx, dy) {
  const world = 256 * 2 ** z;
  const x = ((at.lon + 180) / 360) * world + dx;
  const s = Math.sin((at.lat * Math.PI) / 180);
  const y = (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * world + dy;
  const n = Math.PI - (2 * Math.PI * y) / world;
  return { lat: (180 / Math.PI) * Math.atan(Math.sinh(n)), lon: (x / world) * 360 - 180 };
}

// The two numbers with five decimals in `text` (a marked place, a guard's position).
function place(text) {
  const m = text.match(/(-?\d+\.\d{5}), (-?\d+\.\d{5})/);
  assert.ok(m, `no place in "${text}"`);
  return { lat: Number(m[1]), lon: Number(m[2]) };
}

// Within two pixels at the map's zoom.
function near(got, want, what) {
  const tolerance = 2 * (360 / (256 * 2 ** ZOOM));
  assert.ok(Math.abs(got.lat - want.lat) < tolerance && Math.abs(got.lon - want.lon) < tolerance,
    `${what}: ${JSON.stringify(got)}, wanted ${JSON.stringify(want)}`);
}

const row = (page, id) => page.locator(`#console-guards li[data-guard-id="${id}"]`);

// Opens the map dialog from guard `id`'s row with `how` ('click', 'tap' or 'keyboard'),
// waits for its tiles, and returns the map's box.
async function openMap(page, id, how) {
  const button = row(page, id).locator('button.set-on-map');
  if (how === 'keyboard') {
    await button.focus();
    await page.keyboard.press('Enter');
  } else {
    await button[how]();
  }
  await page.waitForSelector('#guard-map-dialog[open]');
  await page.waitForSelector('#guard-map .leaflet-tile-loaded');
  // The view settles on the guard's place.
  await page.waitForTimeout(300);
  return page.locator('#guard-map').boundingBox();
}

// The guard's place as its row shows it, once the row shows `want`.
async function shownPlace(page, id, want, what) {
  const where = row(page, id).locator('.position');
  let got;
  for (let i = 0; i < 50; i += 1) {
    got = place(await where.textContent());
    if (Math.abs(got.lat - want.lat) < 0.001) break;
    await page.waitForTimeout(100);
  }
  near(got, want, what);
  return got;
}

async function operator(extra, who) {
  const b = await launch(extra);
  browsers.push(b);
  const page = b.ctx.pages()[0] ?? await b.ctx.newPage();
  collectProblems(page, problems, who);
  await logIn(page, env('OPERATOR_EMAIL'), '#console-view');
  await page.waitForSelector('#console-view[data-loaded="true"]');
  await page.waitForSelector(`#console-guards li[data-guard-id="${SATO}"]`);
  return page;
}

try {
  const result = { ok: true };

  // Desktop, English, pointer: a click 128 px east and 64 px north of Sato's last place.
  const page = await operator({ viewport: { width: 1366, height: 800 } }, 'desktop');
  await page.click('[data-lang="en"]');
  const satoBefore = place(await row(page, SATO).locator('.position').textContent());
  let box = await openMap(page, SATO, 'click');
  assert.equal(await page.textContent('#guard-map-title'), 'Where is Sato?');
  assert.equal(await page.textContent('#guard-map-chosen'), 'No place marked yet.');
  assert.ok(await page.isDisabled('#guard-map-save'), 'nothing to save before a place is marked');
  // The known places stand on the map: the other guard (and no home: no request is open).
  assert.equal(await page.locator('#guard-map path.leaflet-interactive').count(), 1);
  assert.ok((await page.textContent('#guard-map .leaflet-control-attribution')).includes('Test tiles <b>'),
    'the credit is shown as text');
  await checkA11y(page, 'the map dialog (desktop)');
  await page.mouse.click(box.x + box.width / 2 + 128, box.y + box.height / 2 - 64);
  const clicked = offset(satoBefore, ZOOM, 128, -64);
  near(place(await page.textContent('#guard-map-chosen')), clicked, 'the marked place');
  await page.screenshot({ path: join(OUT, 'desktop-en-marked.png') });
  await page.click('#guard-map-save');
  await page.waitForSelector('#guard-map-dialog:not([open])', { state: 'attached' });
  await shownPlace(page, SATO, clicked, 'Sato after the click');

  // Keyboard: Suzuki's dialog opens with the map focused; three steps east (80 px each),
  // then Tab to "Mark the centre" and to "Use this place".
  const suzukiBefore = place(await row(page, SUZUKI).locator('.position').textContent());
  await openMap(page, SUZUKI, 'keyboard');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'guard-map', 'the map has the focus');
  for (let i = 0; i < 3; i += 1) {
    await page.keyboard.press('ArrowRight');
    await page.waitForTimeout(350);
  }
  const tabTo = async (id) => {
    for (let i = 0; i < 12 && await page.evaluate(() => document.activeElement.id) !== id; i += 1) {
      await page.keyboard.press('Tab');
    }
    assert.equal(await page.evaluate(() => document.activeElement.id), id);
  };
  await tabTo('guard-map-centre');
  await page.keyboard.press('Enter');
  const moved = offset(suzukiBefore, ZOOM, 240, 0);
  near(place(await page.textContent('#guard-map-chosen')), moved, 'the centre marked from the keyboard');
  await tabTo('guard-map-save');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#guard-map-dialog:not([open])', { state: 'attached' });
  result.suzuki = await shownPlace(page, SUZUKI, moved, 'Suzuki after the keyboard');

  // Phone, Japanese, touch: a tap 50 px west and 80 px south of Sato's new place.
  const phone = await operator({
    viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true,
  }, 'phone');
  await phone.click('[data-lang="ja"]');
  const satoNow = place(await row(phone, SATO).locator('.position').textContent());
  box = await openMap(phone, SATO, 'tap');
  assert.equal(await phone.textContent('#guard-map-title'), 'Sato の現在地');
  await checkA11y(phone, 'the map dialog (phone, Japanese)');
  await phone.touchscreen.tap(box.x + box.width / 2 - 50, box.y + box.height / 2 + 80);
  const tapped = offset(satoNow, ZOOM, -50, 80);
  const chosen = await phone.textContent('#guard-map-chosen');
  assert.ok(chosen.startsWith('指定した場所'), chosen);
  near(place(chosen), tapped, 'the tapped place');
  await phone.screenshot({ path: join(OUT, 'phone-ja-marked.png') });
  await phone.locator('#guard-map-save').tap();
  await phone.waitForSelector('#guard-map-dialog:not([open])', { state: 'attached' });
  result.sato = await shownPlace(phone, SATO, tapped, 'Sato after the tap');
  await phone.screenshot({ path: join(OUT, 'phone-ja-saved.png') });

  assert.deepEqual(problems, []);
  console.log(JSON.stringify(result));
} finally {
  for (const b of browsers) await b.close();
}
