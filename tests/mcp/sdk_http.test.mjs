// tests/mcp/sdk_http.test.mjs: the reference MCP client (@modelcontextprotocol/sdk's Client with its
// StreamableHTTPClientTransport) against `loom serve configs/food_truck.yaml --mcp` at /mcp: tools, the
// calculator, the retriever, the flagship graph as a tool (its result streamed as SSE), a tool failure; and raw
// POSTs that are malformed or lack a session, answered with HTTP errors and JSON-RPC error bodies. The OpenAI
// route keeps working beside it. Run by CTest (mcp_sdk_http) with `node --test`.
//   env: LOOM_BINARY (build/bin/loom), LOOM_SOURCE_DIR (the repository), LOOM_MCP_NPM (the npm prefix)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const { LOOM_BINARY, LOOM_SOURCE_DIR, LOOM_MCP_NPM } = process.env;
if (!LOOM_BINARY || !LOOM_SOURCE_DIR || !LOOM_MCP_NPM)
  throw new Error('set LOOM_BINARY, LOOM_SOURCE_DIR and LOOM_MCP_NPM (ctest does)');
const sdk = path.join(LOOM_MCP_NPM, 'node_modules', '@modelcontextprotocol', 'sdk', 'dist', 'esm');
if (!existsSync(sdk))
  throw new Error(`@modelcontextprotocol/sdk is not installed in ${LOOM_MCP_NPM}: the mcp_npm_install test ` +
                  '(npm ci) failed or did not run; is the npm registry reachable?');
const { Client } = await import(pathToFileURL(path.join(sdk, 'client', 'index.js')));
const { StreamableHTTPClientTransport } = await import(pathToFileURL(path.join(sdk, 'client', 'streamableHttp.js')));

let server;
let base;
let client;
let stderr = '';

before(async () => {
  server = spawn(LOOM_BINARY, ['serve', path.join('configs', 'food_truck.yaml'), '--port', '0', '--mcp'],
                 { cwd: LOOM_SOURCE_DIR, stdio: ['ignore', 'ignore', 'pipe'] });
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`loom serve printed no MCP URL in 30 s:\n${stderr}`)), 30000);
    server.stderr.on('data', (d) => {
      stderr += d;
      const m = stderr.match(/MCP \(Streamable HTTP\) on (http:\/\/127\.0\.0\.1:\d+)\/mcp/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`loom serve exited with ${code}:\n${stderr}`)));
  });
  client = new Client({ name: 'loom-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));
});

after(async () => {
  await client?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGINT');
    await new Promise((resolve) => server.on('exit', resolve));
  }
});

test('tools are listed over HTTP', async () => {
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['calc', 'food-truck', 'forecast', 'knowledge']);
});

test('the calculator and the retriever answer; a failure is isError', async () => {
  const r = await client.callTool({ name: 'calc', arguments: { expression: '6*7' } });
  assert.equal(r.structuredContent.result, 42);
  const k = await client.callTool({ name: 'knowledge', arguments: { query: 'permit' } });
  assert.ok(k.structuredContent.passages.length > 0);
  const bad = await client.callTool({ name: 'calc', arguments: { expression: '2+' } });
  assert.equal(bad.isError, true);
});

test('the graph tool runs the flagship and streams its result', async () => {
  const r = await client.callTool({ name: 'food-truck', arguments: { prompt: 'Help me start a food truck in Nice' } },
                                  undefined, { timeout: 60000 });
  assert.notEqual(r.isError, true, r.content?.[0]?.text);
  assert.match(r.content[0].text, /# Food truck launch package/);
});

test('malformed POSTs get HTTP errors with JSON-RPC bodies; the server keeps serving', async () => {
  const post = (body, headers = {}) => fetch(`${base}/mcp`, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
  });
  let r = await post('{not json');
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.code, -32700);
  r = await post('{"jsonrpc": "2.0", "id": 1}');
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.code, -32600);
  r = await post('{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}');
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.message, /Mcp-Session-Id/);
  r = await post('{"jsonrpc": "2.0", "id": 3, "method": "tools/list"}', { 'mcp-session-id': 'no-such-session' });
  assert.equal(r.status, 404);
  r = await fetch(`${base}/mcp`);
  assert.equal(r.status, 405);
  const again = await client.callTool({ name: 'calc', arguments: { expression: '1+1' } });
  assert.equal(again.structuredContent.result, 2);
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
});
