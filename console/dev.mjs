#!/usr/bin/env node
// The console's dev loop without rebuilding telehook: serves the console's built files at
// /console as `telehook serve` does (with its Content-Security-Policy) and passes every other
// request (the admin API, /stream/calls, /metrics, /hooks) through to a running telehook.
//
//   node console/dev.mjs --target http://127.0.0.1:8787 [--listen 127.0.0.1:8788] [--watch]
//
// With --watch it rebuilds the files whenever a source changes; reload the page to see them.

import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import * as esbuild from 'esbuild';

import { assetsDir, consoleDir, options } from './build.mjs';

const { values: args } = parseArgs({
  options: {
    target: { type: 'string', default: 'http://127.0.0.1:8787' },
    listen: { type: 'string', default: '127.0.0.1:8788' },
    watch: { type: 'boolean', default: false },
  },
});
const target = new URL(args.target);
const [host, port] = args.listen.split(/:(?=\d+$)/);

// The same policy as crates/server/src/http/console.rs, so that the dev page breaks where the
// real one would.
const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const FILES = {
  '/console': ['index.html', 'text/html; charset=utf-8'],
  '/console/': ['index.html', 'text/html; charset=utf-8'],
  '/console/console.js': ['console.js', 'text/javascript; charset=utf-8'],
  '/console/console.css': ['console.css', 'text/css; charset=utf-8'],
};

if (args.watch) {
  const context = await esbuild.context({
    ...options(),
    plugins: [
      {
        name: 'report',
        setup(build) {
          build.onEnd((result) => console.log(`rebuilt (${result.errors.length} errors)`));
        },
      },
    ],
  });
  await context.watch();
}

const server = http.createServer(async (request, response) => {
  const path = new URL(request.url ?? '/', 'http://dev').pathname;
  const file = FILES[path];
  if (file) {
    const [name, type] = file;
    // index.html is the template itself, so that an edit of it shows without a build.
    const from = name === 'index.html' ? join(consoleDir, 'index.html') : join(assetsDir, name);
    try {
      const body = await readFile(from);
      response.writeHead(200, { 'content-type': type, 'cache-control': 'no-store', 'content-security-policy': CSP });
      response.end(body);
    } catch (err) {
      response.writeHead(500, { 'content-type': 'text/plain' });
      response.end(`cannot read ${from}: ${err.message}; run node console/build.mjs`);
    }
    return;
  }
  proxy(request, response);
});

/** Passes the request through as it is, streaming both ways (the live stream never ends). */
function proxy(request, response) {
  const upstream = http.request(
    {
      host: target.hostname,
      port: target.port,
      method: request.method,
      path: request.url,
      headers: { ...request.headers, host: target.host },
    },
    (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      // Node holds headers back until the first byte of the body; a quiet stream has none yet.
      response.flushHeaders();
      answer.pipe(response);
    },
  );
  upstream.on('error', (err) => {
    if (!response.headersSent) {
      response.writeHead(502, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: `dev proxy: telehook at ${target.origin} did not answer: ${err.message}` }));
    } else {
      response.destroy();
    }
  });
  response.on('close', () => upstream.destroy());
  request.pipe(upstream);
}

server.listen(Number(port), host, () => {
  console.log(`console at http://${args.listen}/console, the rest from ${target.origin}`);
});
