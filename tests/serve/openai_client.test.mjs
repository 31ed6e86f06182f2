// tests/serve/openai_client.test.mjs: the real `openai` npm client (v4) against `loom serve
// configs/serve_echo.yaml`: a plain completion, a streamed one, concurrent ones, the model list, and
// malformed requests answered with 400 and an OpenAI-style JSON error. Run by CTest (serve_openai_client)
// with `node --test`; its fixture installs the package into LOOM_SERVE_NPM.
//   env: LOOM_BINARY (build/bin/loom), LOOM_SOURCE_DIR (the repository), LOOM_SERVE_NPM (the npm prefix)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const { LOOM_BINARY, LOOM_SOURCE_DIR, LOOM_SERVE_NPM } = process.env;
if (!LOOM_BINARY || !LOOM_SOURCE_DIR || !LOOM_SERVE_NPM)
  throw new Error('set LOOM_BINARY, LOOM_SOURCE_DIR and LOOM_SERVE_NPM (ctest does)');
if (!existsSync(path.join(LOOM_SERVE_NPM, 'node_modules', 'openai', 'package.json')))
  throw new Error(`the openai npm package is not installed in ${LOOM_SERVE_NPM}: the serve_npm_install test ` +
                  '(npm ci) failed or did not run; is the npm registry reachable?');
const OpenAI = createRequire(path.join(LOOM_SERVE_NPM, 'package.json'))('openai');

let server;
let baseURL;
let client;
let stderr = '';

before(async () => {
  // --port 0: the server picks a free port and prints its URL.
  server = spawn(LOOM_BINARY, ['serve', path.join(LOOM_SOURCE_DIR, 'configs', 'serve_echo.yaml'), '--port', '0'],
                 { stdio: ['ignore', 'ignore', 'pipe'] });
  baseURL = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`loom serve printed no URL in 30 s:\n${stderr}`)), 30000);
    server.stderr.on('data', (d) => {
      stderr += d;
      const m = stderr.match(/on (http:\/\/127\.0\.0\.1:\d+\/v1)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`loom serve exited with ${code}:\n${stderr}`)));
  });
  client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 30000 });
});

after(async () => {
  // A server that is gone already crashed, or a sanitizer stopped it (asan preset): that fails the suite too.
  assert.ok(server.exitCode === null && server.signalCode === null,
            `loom serve exited before the tests ended (code ${server.exitCode}, signal ${server.signalCode}):\n${stderr}`);
  const exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
  server.kill('SIGTERM');
  const { code, signal } = await exited;
  assert.equal(signal, null, `loom serve died of ${signal}:\n${stderr}`);
  assert.equal(code, 0, `loom serve exited with ${code}:\n${stderr}`);
});

test('chat.completions.create answers with the user message', async () => {
  const r = await client.chat.completions.create({
    model: 'serve_echo',
    messages: [{ role: 'system', content: 'echo' }, { role: 'user', content: 'hello from node' }],
  });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, 'serve_echo');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, 'hello from node');
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.deepEqual(r.usage, { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 });
});

test('content parts are joined into the prompt', async () => {
  const r = await client.chat.completions.create({
    model: 'serve_echo',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }] }],
  });
  assert.equal(r.choices[0].message.content, 'one\ntwo');
});

test('stream: true yields a role chunk, the content, and a stop chunk', async () => {
  const stream = await client.chat.completions.create({
    model: 'serve_echo',
    messages: [{ role: 'user', content: 'streamed hello' }],
    stream: true,
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length >= 3, `only ${chunks.length} chunks`);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(c.id, chunks[0].id);
  }
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const content = chunks.map((c) => c.choices[0].delta.content ?? '').join('');
  assert.equal(content, 'streamed hello');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  for (const c of chunks.slice(0, -1)) assert.equal(c.choices[0].finish_reason, null);
});

test('concurrent requests each get their own answer', async () => {
  const texts = Array.from({ length: 8 }, (_, i) => `concurrent request ${i}`);
  const answers = await Promise.all(texts.map((text) =>
    client.chat.completions.create({ model: 'serve_echo', messages: [{ role: 'user', content: text }] })));
  assert.deepEqual(answers.map((a) => a.choices[0].message.content), texts);
  assert.equal(new Set(answers.map((a) => a.id)).size, texts.length);
});

test('models.list names the served graph', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ['serve_echo']);
  const m = await client.models.retrieve('serve_echo');
  assert.equal(m.owned_by, 'loom');
  await assert.rejects(client.models.retrieve('gpt-4'), (e) => e instanceof OpenAI.NotFoundError);
});

test('a malformed request gets 400 with an OpenAI-style JSON error', async () => {
  // Through the client: it parses the error body into a BadRequestError.
  await assert.rejects(
    client.post('/chat/completions', { body: { model: 'serve_echo', messages: 'oops' } }),
    (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, `${e}`);
      assert.equal(e.status, 400);
      assert.equal(e.type, 'invalid_request_error');
      assert.equal(e.param, 'messages');
      assert.match(e.message, /messages.*must be an array/);
      return true;
    });
  // And raw: the body itself is the JSON error.
  for (const body of ['{not json', JSON.stringify({ model: 'serve_echo' }),
                      JSON.stringify({ messages: [{ role: 'system', content: 'no user' }] })]) {
    const r = await fetch(`${baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body,
    });
    assert.equal(r.status, 400, body);
    const j = await r.json();
    assert.equal(j.error.type, 'invalid_request_error');
    assert.equal(typeof j.error.message, 'string');
    assert.equal(j.error.code, null);
  }
});
