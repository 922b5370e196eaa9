// The vote page in a real browser: Debian's chromium driven by playwright-core (never
// `npx playwright install`). Skips when /usr/bin/chromium is absent (apt-get install -y chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VoteStore } from '../store.js';
import { aggregate } from '../aggregate.js';
import { startVoteServer } from './server.js';
import { SAMPLE_SETS, scratch } from './testing.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = '/tmp/plum-vote.png';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

test('vote page in chromium: name, best by click, best by key, undo, worst by Shift+key, ranking by clicks', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent (apt-get install -y chromium)`, timeout: 60_000 }, async () => {
  const { chromium } = await import('playwright-core');
  const tmp = scratch();
  const profile = mkdtempSync(join(tmpdir(), 'plum-chromium-'));
  const store = VoteStore.open(tmp.store);
  const server = await startVoteServer({ sets: SAMPLE_SETS, store, port: 0 });
  const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, viewport: { width: 1280, height: 860 } });
  try {
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(10_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // A stage is ready for keys once htmx has settled it (vote.js ignores keys until then).
    const onPrompt = async (id: string): Promise<void> => {
      await page.waitForSelector(`#stage[data-prompt="${id}"]`);
      await page.waitForFunction(() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added'));
    };

    await page.goto(server.url);
    await page.fill('#name', 'Ann');
    await page.click('button:has-text("Start voting")');
    await onPrompt('p-1');
    assert.equal(await page.textContent('[data-voter]'), 'Ann');
    // A marker on window survives htmx swaps but not page loads: votes must not reload the page.
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 1));

    await page.click('.card[data-id="p-1-1"] button.best'); // best by clicking
    await onPrompt('p-2');
    assert.match((await page.textContent('.flash.ok'))!, /Saved best = candidate 2 on prompt 1/);
    await page.keyboard.press('1'); // best by shortcut
    await onPrompt('p-3');
    await page.keyboard.press('u'); // undo it: back to p-2
    await onPrompt('p-2');
    assert.match((await page.textContent('.flash.ok'))!, /Undone: best = candidate 1 on prompt 2/);
    await page.keyboard.press('Shift+Digit3'); // worst: stays on p-2, marked
    await page.waitForSelector('.card.is-worst[data-id="p-2-2"]');
    assert.equal(await page.textContent('.progress strong'), '2');
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await page.keyboard.press('r'); // rank: 2nd, then 1st; the 3rd is implied and the ranking is sent
    await page.waitForSelector('#stage.ranking');
    await page.click('.card[data-id="p-2-1"]');
    await page.waitForSelector('.card[data-id="p-2-1"][data-rank="1"]');
    await page.keyboard.press('1');
    await onPrompt('p-3');
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 1, 'no full page load');
    assert.deepEqual(errors, []);

    assert.deepEqual(
      store.votes().map((v) => [v.voter, v.promptId, v.kind, v.candidateId ?? v.ranking]),
      [
        ['Ann', 'p-1', 'best', 'p-1-1'],
        ['Ann', 'p-2', 'worst', 'p-2-2'],
        ['Ann', 'p-2', 'rank', ['p-2-1', 'p-2-0', 'p-2-2']],
      ],
    );
    // The votes cast in the browser become the exported chosen/rejected pairs.
    const { pairs } = aggregate(SAMPLE_SETS, store.votes());
    const text = (promptId: string, id: string) => SAMPLE_SETS.find((x) => x.promptId === promptId)!.candidates.find((c) => c.id === id)!.text;
    const byPrompt = new Map(pairs.map((p) => [p.promptId, p]));
    assert.equal(byPrompt.get('p-1')?.chosen, text('p-1', 'p-1-1'));
    assert.equal(byPrompt.get('p-2')?.chosen, text('p-2', 'p-2-1'));
    assert.equal(byPrompt.get('p-2')?.rejected, text('p-2', 'p-2-2'));
  } finally {
    await browser.close();
    await server.close();
    store.close();
    tmp.cleanup();
    rmSync(profile, { recursive: true, force: true });
  }
});
