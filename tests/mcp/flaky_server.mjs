// tests/mcp/flaky_server.mjs: an MCP server over stdio, written with the reference SDK's low-level Server,
// that misbehaves on request: `crash` exits (after a line on stderr), `grow` adds a tool `late` and sends
// notifications/tools/list_changed. `ok` answers with its process id, so a test can see a restart.
//   node flaky_server.mjs NPM_PREFIX
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const sdk = path.join(process.argv[2], 'node_modules', '@modelcontextprotocol', 'sdk', 'dist', 'esm');
const { Server } = await import(pathToFileURL(path.join(sdk, 'server', 'index.js')));
const { StdioServerTransport } = await import(pathToFileURL(path.join(sdk, 'server', 'stdio.js')));
const { ListToolsRequestSchema, CallToolRequestSchema } = await import(pathToFileURL(path.join(sdk, 'types.js')));

const empty = { type: 'object', properties: {} };
const tools = [
  { name: 'ok', description: 'Answers with the process id.', inputSchema: empty },
  { name: 'crash', description: 'Exits with status 3.', inputSchema: empty },
  { name: 'grow', description: 'Adds the tool `late`.', inputSchema: empty },
];
const server = new Server({ name: 'flaky', version: '1.0.0' }, { capabilities: { tools: { listChanged: true } } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }));
server.setRequestHandler(CallToolRequestSchema, async (req) => {
  const text = (t) => ({ content: [{ type: 'text', text: t }] });
  switch (req.params.name) {
    case 'ok': return text(`ok from ${process.pid}`);
    case 'crash':
      process.stderr.write('flaky: crashing on purpose\n', () => process.exit(3));
      return new Promise(() => {});
    case 'grow':
      if (!tools.some((t) => t.name === 'late'))
        tools.push({ name: 'late', description: 'Added at run time.', inputSchema: empty });
      await server.sendToolListChanged();
      return text('grown');
    case 'late':
      if (tools.some((t) => t.name === 'late')) return text('late tool');
  }
  return { content: [{ type: 'text', text: `no tool ${req.params.name}` }], isError: true };
});
await server.connect(new StdioServerTransport());
