// tests/route/openai_client.test.mjs: the real `openai` npm client (v4) against `loom route` in front of two
// simulated replicas (tests/support/replica_sim.py): a whole answer, a stream, concurrent requests, the
// model list, and a stream whose replica dies mid-answer (the client still reads the whole answer once).
// Run by CTest (route_openai_client) with `node --test`; the npm package comes from serve's fixture.
//   env: LOOM_BINARY, LOOM_SOURCE_DIR, LOOM_SERVE_NPM, LOOM_PYTHON
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const { LOOM_BINARY, LOOM_SOURCE_DIR, LOOM_SERVE_NPM, LOOM_PYTHON } = process.env;
if (!LOOM_BINARY || !LOOM_SOURCE_DIR || !LOOM_SERVE_NPM || !LOOM_PYTHON)
  throw new Error('set LOOM_BINARY, LOOM_SOURCE_DIR, LOOM_SERVE_NPM and LOOM_PYTHON (ctest does)');
if (!existsSync(path.join(LOOM_SERVE_NPM, 'node_modules', 'openai', 'package.json')))
  throw new Error(`the openai npm package is not installed in ${LOOM_SERVE_NPM}: the serve_npm_install test ` +
                  '(npm ci) failed or did not run; is the npm registry reachable?');
const OpenAI = createRequire(path.join(LOOM_SERVE_NPM, 'package.json'))('openai');

const children = [];

// Starts a child and resolves with the first line of its stdout (its port).
function start(cmd, args) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(p);
  let out = '';
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} printed no port in 30 s:\n${err}`)), 30000);
    p.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve({ process: p, line: out.slice(0, nl), stderr: () => err });
      }
    });
    p.on('exit', (code) => reject(new Error(`${cmd} exited with ${code}:\n${err}`)));
  });
}

const sim = async () => {
  const s = await start(LOOM_PYTHON, [path.join(LOOM_SOURCE_DIR, 'tests', 'support', 'replica_sim.py'), '--port', '0']);
  return { ...s, port: Number(s.line.split(':').at(-1)) };
};

let router;
let client;
let replicas;

before(async () => {
  replicas = [await sim(), await sim()];
  const args = ['route', '--port', '0', '--policy', 'round-robin'];
  for (const r of replicas) args.push('--backend', `http://127.0.0.1:${r.port}/v1`);
  router = await start(LOOM_BINARY, args);
  client = new OpenAI({ baseURL: `http://127.0.0.1:${Number(router.line)}/v1`, apiKey: 'unused', maxRetries: 0,
                        timeout: 30000 });
});

after(async () => {
  assert.ok(router.process.exitCode === null && router.process.signalCode === null,
            `loom route exited before the tests ended:\n${router.stderr()}`);
  const exited = new Promise((resolve) => router.process.on('exit', (code, signal) => resolve({ code, signal })));
  for (const c of children) c.kill('SIGTERM');
  const { code, signal } = await exited;
  assert.equal(signal, null, `loom route died of ${signal}:\n${router.stderr()}`);
  assert.equal(code, 0, `loom route exited with ${code}:\n${router.stderr()}`);
});

const messages = (text) => [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: text }];

// The simulator's answer, asked of a replica directly.
async function direct(port, text) {
  const c = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
  const r = await c.chat.completions.create({ model: 'sim', messages: messages(text) });
  return r.choices[0].message.content;
}

test('a whole answer', async () => {
  const r = await client.chat.completions.create({ model: 'sim', messages: messages('hello router') });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-route-/);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, await direct(replicas[0].port, 'hello router'));
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.usage.completion_tokens, 24);
});

test('a stream: one role chunk, the content, one stop', async () => {
  const stream = await client.chat.completions.create({ model: 'sim', messages: messages('stream it'), stream: true });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  for (const c of chunks) assert.equal(c.id, chunks[0].id);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const content = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(content, await direct(replicas[1].port, 'stream it'));
  assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason === 'stop').length, 1);
});

test('concurrent requests each get their own answer', async () => {
  const texts = Array.from({ length: 8 }, (_, i) => `concurrent request ${i}`);
  const answers = await Promise.all(texts.map((text) =>
    client.chat.completions.create({ model: 'sim', messages: messages(text) })));
  const expected = await Promise.all(texts.map((text) => direct(replicas[0].port, text)));
  assert.deepEqual(answers.map((a) => a.choices[0].message.content), expected);
});

test('models.list: the replicas\' model', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['sim']);
});

test('a replica that dies mid-stream: the client reads the whole answer once', async () => {
  const expected = await direct(replicas[1].port, 'die for me');
  // Round robin: 10 requests so far (1 whole, 1 stream, 8 concurrent), so this one goes to replica 0,
  // which exits after its 4th token.
  await fetch(`http://127.0.0.1:${replicas[0].port}/control`,
              { method: 'POST', body: JSON.stringify({ die_after_tokens: 4 }) });
  const died = new Promise((resolve) => replicas[0].process.on('exit', (code) => resolve(code)));
  const stream = await client.chat.completions.create({ model: 'sim', messages: messages('die for me'), stream: true });
  let content = '';
  for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(content, expected);
  assert.equal(await died, 3);  // it did die, mid-answer
});
