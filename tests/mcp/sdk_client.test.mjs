// tests/mcp/sdk_client.test.mjs: the reference MCP client (@modelcontextprotocol/sdk's Client) against
// `loom mcp configs/food_truck.yaml` over stdio: it lists the tools, calls the calculator and the retriever,
// sees a tool failure as isError, runs the flagship graph as a tool, and raw malformed messages are answered
// with JSON-RPC errors while the server keeps serving. Run by CTest (mcp_sdk_client) with `node --test`.
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
const { StdioClientTransport } = await import(pathToFileURL(path.join(sdk, 'client', 'stdio.js')));
const { LATEST_PROTOCOL_VERSION } = await import(pathToFileURL(path.join(sdk, 'types.js')));

const flagship = path.join('configs', 'food_truck.yaml');
let client;
let transport;
let negotiated;

before(async () => {
  transport = new StdioClientTransport({ command: LOOM_BINARY, args: ['mcp', flagship], cwd: LOOM_SOURCE_DIR,
                                         stderr: 'ignore' });
  client = new Client({ name: 'loom-test', version: '1.0.0' });
  // The revision the server answers initialize with reaches the transport.
  const set = transport.setProtocolVersion?.bind(transport);
  transport.setProtocolVersion = (v) => { negotiated = v; set?.(v); };
  await client.connect(transport);
});

after(async () => {
  await client?.close();
});

test('initialize negotiates the SDK\'s newest revision', () => {
  assert.equal(client.getServerVersion().name, 'loom:food-truck');
  assert.equal(negotiated, LATEST_PROTOCOL_VERSION);
  assert.equal(negotiated, '2025-11-25');
});

test('the tool nodes and the graph are listed with their schemas', async () => {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name).sort();
  assert.deepEqual(names, ['calc', 'food-truck', 'forecast', 'knowledge']);
  const calc = tools.find((t) => t.name === 'calc');
  assert.equal(calc.inputSchema.type, 'object');
  assert.deepEqual(calc.inputSchema.required, ['expression']);
  const graph = tools.find((t) => t.name === 'food-truck');
  assert.deepEqual(graph.inputSchema.required, ['prompt']);
});

test('the calculator answers with structured content and text', async () => {
  const r = await client.callTool({ name: 'calc', arguments: { expression: '(120 * 12.5) * 2' } });
  assert.notEqual(r.isError, true);
  assert.equal(r.structuredContent.result, 3000);
  assert.match(r.content[0].text, /"result":3000/);
});

test('a tool failure is an isError result naming the problem', async () => {
  const r = await client.callTool({ name: 'calc', arguments: { expression: '1/0' } });
  assert.equal(r.isError, true);
  assert.match(r.content[0].text, /division by zero at column/);
  const bad = await client.callTool({ name: 'calc', arguments: { expression: 5 } });
  assert.equal(bad.isError, true);
  assert.match(bad.content[0].text, /argument `expression`: expected string/);
});

test('the retriever finds passages of the corpus', async () => {
  const r = await client.callTool({ name: 'knowledge', arguments: { query: 'permit', top_k: 2 } });
  assert.notEqual(r.isError, true);
  assert.equal(r.structuredContent.passages.length, 2);
  assert.match(JSON.stringify(r.structuredContent.passages), /permit/i);
});

test('the graph itself is a tool: the flagship turns a prompt into a launch package', async () => {
  const r = await client.callTool({ name: 'food-truck', arguments: { prompt: 'Help me start a food truck in Lyon' } },
                                  undefined, { timeout: 60000 });
  assert.notEqual(r.isError, true, r.content?.[0]?.text);
  assert.match(r.content[0].text, /# Food truck launch package/);
  assert.equal(r.structuredContent.output.length, 1);
});

test('an unknown tool is a protocol error', async () => {
  await assert.rejects(client.callTool({ name: 'nope', arguments: {} }), /unknown tool `nope`/);
});

test('malformed and oversized messages get JSON-RPC errors and never stop the server', async () => {
  const child = spawn(LOOM_BINARY, ['mcp', flagship], { cwd: LOOM_SOURCE_DIR, stdio: ['pipe', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const lines = [
    'this is not json',
    '[1, 2',
    '{"jsonrpc": "2.0", "id": 1}',
    '{"jsonrpc": "1.0", "id": 2, "method": "ping"}',
    '{"jsonrpc": "2.0", "id": 3, "method": "no/such/method"}',
    '{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"arguments": {}}}',
    '{"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "calc", "arguments": [1]}}',
    '{"jsonrpc": "2.0", "id": 6, "method": "ping"}',
    `{"jsonrpc": "2.0", "id": 7, "method": "ping", "params": {"pad": "${'x'.repeat(17 << 20)}"}}`,
    '{"jsonrpc": "2.0", "id": 8, "method": "ping"}',
  ];
  child.stdin.write(lines.join('\n') + '\n');
  const replies = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to every line in 20 s:\n${out}`)), 20000);
    const check = () => {
      const got = out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
      if (got.length >= lines.length) {
        clearTimeout(timer);
        resolve(got);
      }
    };
    child.stdout.on('data', check);
  });
  child.stdin.end();
  const codes = replies.map((r) => r.error?.code ?? 'ok');
  assert.deepEqual(codes, [-32700, -32700, -32600, -32600, -32601, -32602, -32602, 'ok', -32600, 'ok']);
  assert.equal(replies[2].id, 1);
  assert.equal(replies[7].id, 6);
  assert.match(replies[8].error.message, /over the limit of 16777216 bytes/);  // 17 MiB: dropped, not buffered
  assert.equal(replies[9].id, 8);
  await new Promise((resolve) => child.on('exit', resolve));
});

test('a long graph run sends progress, and the client\'s cancellation stops it', async () => {
  // tests/serve/slow.yaml with 40 ticks at 5 a second: a run of about 8 s.
  const slowTransport = new StdioClientTransport({
    command: LOOM_BINARY, cwd: LOOM_SOURCE_DIR, stderr: 'ignore',
    args: ['mcp', path.join('tests', 'serve', 'slow.yaml'), '--input', 'prompt', '--set', 'ticks.count=40'],
  });
  const slow = new Client({ name: 'loom-test-slow', version: '1.0.0' });
  await slow.connect(slowTransport);
  try {
    const progress = [];
    const started = Date.now();
    // The SDK cancels a request that times out (notifications/cancelled) and rejects it.
    await assert.rejects(
      slow.callTool({ name: 'serve_slow', arguments: { prompt: 'hi' } }, undefined,
                    { timeout: 1800, onprogress: (p) => progress.push(p) }),
      /timed out/i);
    assert.ok(Date.now() - started < 5000);
    assert.ok(progress.length >= 2, `progress notifications: ${JSON.stringify(progress)}`);
    assert.ok(progress[1].progress > progress[0].progress);
    // The server is still there, and the cancelled run no longer holds it.
    await slow.ping();
    const { tools } = await slow.listTools();
    assert.deepEqual(tools.map((t) => t.name), ['serve_slow']);
  } finally {
    await slow.close();
  }
});
