// tests/observe/browser/ui_approve.mjs: decisions from the live view, in a real browser (docs/durability.md,
// "People in the loop"). Starts `loom run --state DIR --ui 127.0.0.1:0` on a graph whose two values wait at
// human.approve, loads the page in Debian's chromium (puppeteer-core), clicks Approve on one and Reject on
// the other, and checks that the run then ends ok (exit 0) with the approved value in out.jsonl once and the
// rejected one in rejected.jsonl with the page's reason. Saves LOOM_ARTIFACTS/ui_approve.png.
//   env: LOOM_BINARY, LOOM_UI_NPM (the npm prefix), LOOM_CHROMIUM, LOOM_ARTIFACTS
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { env, launchBrowser, startLiveView } from './live_view.mjs';

const { LOOM_BINARY, LOOM_UI_NPM, LOOM_CHROMIUM, LOOM_ARTIFACTS } =
  env('LOOM_BINARY', 'LOOM_UI_NPM', 'LOOM_CHROMIUM', 'LOOM_ARTIFACTS');

const deadline = setTimeout(() => { console.error('ui_approve: over 100 s, giving up'); process.exit(1); }, 100_000);
const dir = mkdtempSync(path.join(os.tmpdir(), 'loom-ui-approve-'));
const graph = path.join(dir, 'graph.yaml');
writeFileSync(graph, `graph: ui_approve
nodes:
  src: {kind: source.sequence, params: {count: 2}}
  review: {kind: human.approve}
  ok: {kind: sink.file, params: {path: "${path.join(dir, 'out.jsonl')}"}}
  no: {kind: sink.file, params: {path: "${path.join(dir, 'rejected.jsonl')}"}}
edges: [src -> review, review.out -> ok, review.rejected -> no]
`);

let view;
let browser;
const stderr = () => (view ? view.stderr() : '');
try {
  view = await startLiveView(LOOM_BINARY, ['run', graph, '--state', path.join(dir, 'state'), '--ui', '127.0.0.1:0',
                                           '-q']);
  const { url, exited } = view;
  console.log(`ui_approve: live view at ${url}`);

  browser = await launchBrowser(LOOM_UI_NPM, LOOM_CHROMIUM, 700);
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', e => errors.push(String(e)));
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 30_000 });
  // Both values wait: two rows, each with its buttons.
  await page.waitForFunction(() => document.querySelectorAll('#decisions li').length === 2, { timeout: 30_000 });
  const rows = await page.evaluate(() => [...document.querySelectorAll('#decisions li')].map(li => ({
    node: li.dataset.node, id: li.dataset.id, text: li.textContent })));
  assert.deepEqual(rows.map(r => [r.node, r.id]), [['review', '0'], ['review', '1']]);
  mkdirSync(LOOM_ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(LOOM_ARTIFACTS, 'ui_approve.png'), fullPage: true });

  await page.click('#decisions li[data-id="1"] button.approve');
  await page.waitForFunction(() => !document.querySelector('#decisions li[data-id="1"]'), { timeout: 30_000 });
  await page.click('#decisions li[data-id="0"] button.reject');
  const code = await exited;
  assert.equal(code, 0, `loom run after both decisions:\n${stderr()}`);
  assert.equal(readFileSync(path.join(dir, 'out.jsonl'), 'utf8'), '1\n');
  const rejected = JSON.parse(readFileSync(path.join(dir, 'rejected.jsonl'), 'utf8'));
  assert.equal(rejected.value, 0);
  assert.equal(rejected.reason, 'rejected in the live view');
  assert.match(rejected.by, /\(live view\)$/);
  assert.deepEqual(errors, [], 'the page threw');
  console.log('ui_approve: ok');
} catch (e) {
  console.error(`ui_approve: ${e.stack || e}\n--- loom stderr ---\n${stderr()}`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  if (view && view.loom.exitCode === null && view.loom.signalCode === null) view.loom.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  clearTimeout(deadline);
}
