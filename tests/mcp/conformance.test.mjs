// tests/mcp/conformance.test.mjs: @modelcontextprotocol/conformance's server scenarios against `loom serve
// configs/food_truck.yaml --mcp`. Only the scenarios that do not need the suite's own fixture server's tools,
// resources or prompts (test_simple_text, test_error_handling, ...) apply to a graph; each of those must pass.
// The others are listed in docs/mcp.md with why they fail. Run by CTest (mcp_conformance) with `node --test`.
//   env: LOOM_BINARY, LOOM_SOURCE_DIR, LOOM_MCP_NPM (the npm prefix)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const { LOOM_BINARY, LOOM_SOURCE_DIR, LOOM_MCP_NPM } = process.env;
if (!LOOM_BINARY || !LOOM_SOURCE_DIR || !LOOM_MCP_NPM)
  throw new Error('set LOOM_BINARY, LOOM_SOURCE_DIR and LOOM_MCP_NPM (ctest does)');
const cli = path.join(LOOM_MCP_NPM, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
if (!existsSync(cli))
  throw new Error(`@modelcontextprotocol/conformance is not installed in ${LOOM_MCP_NPM}: the mcp_npm_install ` +
                  'test (npm ci) failed or did not run');

const applicable = ['server-initialize', 'ping', 'logging-set-level', 'tools-list', 'server-sse-multiple-streams'];

let server;
let url;
let stderr = '';

before(async () => {
  server = spawn(LOOM_BINARY, ['serve', path.join('configs', 'food_truck.yaml'), '--port', '0', '--mcp'],
                 { cwd: LOOM_SOURCE_DIR, stdio: ['ignore', 'ignore', 'pipe'] });
  url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`loom serve printed no MCP URL in 30 s:\n${stderr}`)), 30000);
    server.stderr.on('data', (d) => {
      stderr += d;
      const m = stderr.match(/MCP \(Streamable HTTP\) on (http:\/\/127\.0\.0\.1:\d+\/mcp)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`loom serve exited with ${code}:\n${stderr}`)));
  });
});

after(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGINT');
    await new Promise((resolve) => server.on('exit', resolve));
  }
});

for (const scenario of applicable) {
  test(`conformance: ${scenario}`, async () => {
    const out = await new Promise((resolve) => {
      execFile(process.execPath, [cli, 'server', '--url', url, '--scenario', scenario], { timeout: 60000 },
               (err, stdout, errout) => resolve({ code: err ? (err.code ?? 1) : 0, text: stdout + errout }));
    });
    assert.match(out.text, /Passed: (\d+)\/\1, 0 failed/, out.text);
    assert.equal(out.code, 0, out.text);
  });
}
