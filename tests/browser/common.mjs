// What the browser tests share: settings from the environment, and Debian's Chromium started
// headless with a fresh profile and the flags this closed network needs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export function env(k) {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
}

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// A browser with its own empty profile; `close()` removes the profile too. `extra` adds
// launch options (permissions, args appended to the common flags).
export async function launch(extra = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'eyeward-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    locale: 'en-US',
    viewport: { width: 1280, height: 800 },
    ...extra,
    args: [...FLAGS, ...(extra.args || [])],
  });
  return {
    ctx,
    async close() {
      await ctx.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
