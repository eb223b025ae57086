// Drives the rafka console in headless Chromium (Debian's /usr/bin/chromium) through
// playwright-core: each page must render what the caller created, and a screenshot of each is
// written. Usage:
//   node console.mjs BASE_URL SCREENSHOT_DIR EXPECT_JSON
// EXPECT_JSON: {"topics": {"name": partitions, ...}, "group": "id", "lag": n,
//               "message": {"topic": t, "partition": p, "offset": o, "value": "...", "key": "..."}}
// Prints "N passed, M failed" and exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, shots, expectJson] = process.argv.slice(2);
if (!base || !shots || !expectJson) {
  console.error('usage: node console.mjs BASE_URL SCREENSHOT_DIR EXPECT_JSON');
  process.exit(2);
}
const expect = JSON.parse(expectJson);
mkdirSync(shots, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'rafka-chromium-'));
let passed = 0, failed = 0;
const check = (name, ok, detail) => {
  if (ok) { passed++; console.log(`ok - ${name}`); } else { failed++; console.log(`not ok - ${name}: ${detail ?? ''}`); }
};

// A fresh profile (Playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  // The console's CSP forbids eval; Playwright's waitForFunction needs it (the test only).
  bypassCSP: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const errors = [];
try {
  const page = browser.pages()[0] || await browser.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  // Only this node: a request anywhere else fails the test.
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(base) || url.startsWith('data:')) return route.continue();
    errors.push(`request outside the node: ${url}`);
    return route.abort();
  });

  // Opens a page and waits until it has rendered (body[data-ready]) and `sel` shows `text`.
  async function open(hash, name, sel, text) {
    const started = Date.now();
    await page.goto(`${base}/${hash}`, { waitUntil: 'load' });
    await page.waitForFunction(() => document.body.dataset.ready !== undefined, null, { timeout: 15000 });
    let ok = true, detail = '';
    try {
      await page.locator(sel).filter({ hasText: text }).first().waitFor({ timeout: 15000 });
    } catch (e) {
      ok = false; detail = `${sel} never showed ${JSON.stringify(text)}: ${(await page.locator('#content').innerText()).slice(0, 400)}`;
    }
    check(`${name} renders ${JSON.stringify(text)} (${Date.now() - started} ms)`, ok, detail);
    return ok;
  }
  async function shot(name) {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  }

  // Overview: the node, its roles, the active controller.
  await open('#/', 'overview', '#nodes td', 'active controller');
  const topicsCard = await page.locator('[data-k="topics"]').innerText();
  check('overview counts the topics', Number(topicsCard.replace(/,/g, '')) >= Object.keys(expect.topics).length, topicsCard);
  await page.locator('#quorum td').first().waitFor();
  check('overview shows the quorum', (await page.locator('#quorum tbody tr').count()) >= 1);
  await shot('overview');

  // Topics: every topic with its partition count.
  await open('#/topics', 'topics', '#topics td', Object.keys(expect.topics)[0]);
  for (const [name, partitions] of Object.entries(expect.topics)) {
    const row = page.locator(`#topics tr[data-topic="${name}"]`);
    const count = (await row.count()) ? await row.locator('[data-k="partitions"]').innerText() : 'missing';
    check(`topics lists ${name} with ${partitions} partitions`, count === String(partitions), count);
  }
  await shot('topics');

  // One topic: its partitions and configs.
  const [first, parts] = Object.entries(expect.topics)[0];
  await open(`#/topics/${encodeURIComponent(first)}`, 'topic page', '#configs td', 'retention.ms');
  check(`topic page shows ${parts} partitions`, (await page.locator('#partitions tbody tr').count()) === parts);
  await shot('topic');

  // Groups and the group's lag.
  await open('#/groups', 'groups', '#groups td', expect.group);
  const lagCell = await page.locator(`#groups tr[data-group="${expect.group}"] [data-k="lag"]`).innerText();
  check(`groups shows ${expect.group} with lag ${expect.lag}`, lagCell.replace(/,/g, '') === String(expect.lag), lagCell);
  await shot('groups');
  await open(`#/groups/${encodeURIComponent(expect.group)}`, 'group page', '[data-k="total-lag"]', String(expect.lag));
  // The lag chart fills in as the node samples (the page refreshes itself every 5 s).
  let chart = false;
  for (let i = 0; i < 30 && !chart; i++) {
    chart = (await page.locator('[data-chart="Lag (records)"] polyline').count()) > 0;
    if (!chart) { await page.waitForTimeout(500); if (i % 8 === 7) await page.reload(); }
  }
  check('group page draws the lag chart', chart);
  await shot('group');

  // The message browser shows the produced message.
  const m = expect.message;
  await open(`#/messages?topic=${encodeURIComponent(m.topic)}&partition=${m.partition}&offset=${m.offset}`,
    'message browser', '#messages td', m.value);
  if (m.key) check('message browser shows the key', (await page.locator('#messages').innerText()).includes(m.key));
  await page.selectOption('select[name="mode"]', 'hex');
  await page.click('#browse button[type="submit"]');
  const hex = Buffer.from(m.value).toString('hex').slice(0, 8).replace(/(..)/g, '$1 ').trim();
  await page.locator('#messages td').filter({ hasText: hex }).first().waitFor({ timeout: 10000 }).then(
    () => check('message browser shows hex', true), () => check('message browser shows hex', false, hex));
  await shot('messages');

  // Throughput: charts drawn.
  await open('#/throughput', 'throughput', '.chart', 'All topics');
  await shot('throughput');

  // Dark theme.
  await page.goto(`${base}/#/topics`);
  await page.click('#theme');
  check('theme switches to dark', (await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark');
  await page.waitForFunction(() => document.body.dataset.ready !== undefined);
  await page.locator('#topics td').first().waitFor();
  await shot('topics-dark');

  check('no script errors', errors.length === 0, errors.join(' | '));
  // An unknown topic shows the node's error (its 404), not a blank page.
  await open('#/topics/no-such-topic', 'unknown topic', '.error', 'UNKNOWN_TOPIC_OR_PARTITION');
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
