// tests/observe/browser/live_view.mjs: what the browser tests share: the environment ctest gives them,
// puppeteer-core from the test's npm prefix, a `loom` child that serves the live view (its address read
// from its stderr), and Debian's chromium, headless.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

// The variables named, each required (the test runs through ctest).
export function env(...names) {
  const out = {};
  for (const name of names) {
    if (!process.env[name]) throw new Error(`${name} is not set (run this through ctest)`);
    out[name] = process.env[name];
  }
  if (out.LOOM_CHROMIUM && !existsSync(out.LOOM_CHROMIUM))
    throw new Error(`no browser at ${out.LOOM_CHROMIUM}: install Debian's chromium`);
  return out;
}

// Starts `loom ARGS` (which must include `--ui 127.0.0.1:0`) and resolves once it printed the view's address:
// {loom (the child), url, exited (a promise of its exit code or signal), stderr() (all it wrote so far)}.
export async function startLiveView(binary, args) {
  let stderr = '';
  const loom = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise(resolve => loom.on('exit', (c, signal) => resolve(c ?? signal)));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`loom printed no live view address in 30 s:\n${stderr}`)), 30_000);
    loom.stderr.on('data', chunk => {
      stderr += chunk;
      const m = /live view of `[^`]*` at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    loom.on('exit', code => reject(new Error(`loom exited (${code}) before serving the live view:\n${stderr}`)));
  });
  return { loom, url, exited, stderr: () => stderr };
}

// Debian's chromium, headless, through puppeteer-core installed under `npmPrefix`.
export async function launchBrowser(npmPrefix, chromium, height) {
  const require = createRequire(path.join(npmPrefix, 'node_modules', 'x.js'));
  const puppeteer = require('puppeteer-core');
  return puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
    defaultViewport: { width: 1400, height },
  });
}
