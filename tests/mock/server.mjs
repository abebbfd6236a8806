#!/usr/bin/env node
// Runs the mock as a process: `node tests/mock/server.mjs [--port N]`.
// Prints exactly one line, `MOCK_URL=http://127.0.0.1:PORT`, then serves
// until SIGTERM or SIGINT.

import { parseArgs } from 'node:util';
import { startMock } from './google.mjs';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid --port: ${values.port}`);
  process.exit(2);
}

const mock = await startMock({ port });
process.stdout.write(`MOCK_URL=${mock.url}\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await mock.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
