// tests/observe/browser/ui_browser.mjs: the live view in a real browser. Starts `loom run --ui 127.0.0.1:0`
// on tests/observe/slow.yaml (a throttled source: about 30 s), launches Debian's chromium headless through
// puppeteer-core, loads the page and checks: a box (SVG group with a shape) for every node, named as in the
// graph; a count that rises in a box while the page is open; the source's edge drawn as waiting for credit;
// nothing requested from any other address. Saves the screenshot LOOM_ARTIFACTS/ui.png, then stops the run
// with SIGINT (exit 130).
//   env: LOOM_BINARY, LOOM_SOURCE_DIR, LOOM_UI_NPM (the npm prefix), LOOM_CHROMIUM, LOOM_ARTIFACTS
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { env, launchBrowser, startLiveView } from './live_view.mjs';

const { LOOM_BINARY, LOOM_SOURCE_DIR, LOOM_UI_NPM, LOOM_CHROMIUM, LOOM_ARTIFACTS } =
  env('LOOM_BINARY', 'LOOM_SOURCE_DIR', 'LOOM_UI_NPM', 'LOOM_CHROMIUM', 'LOOM_ARTIFACTS');

const NODES = ['numbers', 'pace', 'work x2', 'tally', 'batch', 'batches'];  // tests/observe/slow.yaml
const deadline = setTimeout(() => { console.error('ui_browser: over 100 s, giving up'); process.exit(1); }, 100_000);

let view;
let browser;
const stderr = () => (view ? view.stderr() : '');
try {
  view = await startLiveView(LOOM_BINARY, ['run', path.join(LOOM_SOURCE_DIR, 'tests/observe/slow.yaml'), '--ui',
                                           '127.0.0.1:0', '-q']);
  const { loom, url } = view;
  console.log(`ui_browser: live view at ${url}`);

  browser = await launchBrowser(LOOM_UI_NPM, LOOM_CHROMIUM, 560);
  const page = await browser.newPage();
  const requests = [];
  page.on('request', r => requests.push(r.url()));
  const errors = [];
  page.on('pageerror', e => errors.push(String(e)));
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 30_000 });
  await page.waitForSelector('body[data-drawn="true"]', { timeout: 30_000 });
  await page.waitForFunction(() => Number(document.body.dataset.seq || 0) > 0, { timeout: 30_000 });

  // A box for every node: an SVG group with its shape, titled with the node's name.
  const boxes = await page.evaluate(() => [...document.querySelectorAll('#graph svg g.node')].map(g => ({
    id: g.id,
    shape: !!g.querySelector('path, polygon'),
    name: g.querySelectorAll('text')[0]?.textContent,
    fill: g.querySelector('path, polygon')?.getAttribute('fill'),
  })));
  assert.equal(boxes.length, NODES.length, `boxes: ${JSON.stringify(boxes)}`);
  for (const name of NODES) {
    const box = boxes.find(b => b.name === name);
    assert.ok(box, `no box for node ${name}: ${JSON.stringify(boxes)}`);
    assert.ok(box.shape, `the box of ${name} has no shape`);
  }

  // A count rises in the page: the sink's box and its row in the table.
  const box = boxes.find(b => b.name === 'tally').id;
  const first = await page.evaluate(id => Number(document.getElementById(id).dataset.in || 0), box);
  await page.waitForFunction((id, n) => Number(document.getElementById(id).dataset.in || 0) > n + 20,
                             { timeout: 20_000 }, box, first);
  const later = await page.evaluate(id => ({
    in: Number(document.getElementById(id).dataset.in),
    text: document.getElementById(id).querySelectorAll('text')[2].textContent,
  }), box);
  console.log(`ui_browser: tally in ${first} -> ${later.in} (${later.text})`);
  assert.ok(later.in > first);
  assert.match(later.text, /^in [\d,]+ {2}out [\d,]+$/);
  // The throttle's input queue fills: the source waits for credit on its edge, drawn as such.
  await page.waitForSelector('#graph g.edge.blocked', { timeout: 10_000 });
  // The throttle's box is coloured by its queue fill (no longer the white of the layout).
  const paceFill = await page.evaluate(id => document.getElementById(id).querySelector('path, polygon').getAttribute('fill'),
                                       boxes.find(b => b.name === 'pace').id);
  assert.notEqual(paceFill, '#ffffff');

  mkdirSync(LOOM_ARTIFACTS, { recursive: true });
  const shot = path.join(LOOM_ARTIFACTS, 'ui.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`ui_browser: screenshot ${shot}`);

  const elsewhere = requests.filter(u => !u.startsWith(url));
  assert.deepEqual(elsewhere, [], 'the page requested something from another address');
  assert.deepEqual(errors, [], 'the page threw');
  await browser.close();
  browser = undefined;

  loom.kill('SIGINT');
  const code = await view.exited;
  assert.equal(code, 130, `loom run after SIGINT:\n${stderr()}`);
  console.log('ui_browser: ok');
} catch (e) {
  console.error(`ui_browser: ${e.stack || e}\n--- loom stderr ---\n${stderr()}`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  if (view && view.loom.exitCode === null && view.loom.signalCode === null) view.loom.kill('SIGKILL');
  clearTimeout(deadline);
}
