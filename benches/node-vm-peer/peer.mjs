// The peer telehook's TypeScript parsers are measured against: the platform's own way of
// running a tenant's parser, in Node.js, with a fresh `vm` context per request.
//
// The parser's TypeScript is compiled once (types stripped by esbuild, its import of
// `@telehook/parser` replaced by the same names given as the context's globals); each request
// gets a new context in which the compiled script runs and `VoipParseWebhookRequest` is called
// with the request as the platform's `FetchRequest`.
//
//   node peer.mjs invoke PARSER.ts REQUEST.json RUNS   latency of one parse, median and p99
//   node peer.mjs serve PARSER.ts [WORKERS]             HTTP on 127.0.0.1:0, one worker per core
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism } from 'node:os';
import vm from 'node:vm';

import * as esbuild from 'esbuild';

const GLOBALS = {
  VoipWebhookEvent: { NotifyStart: 'notify-start', NotifyAnswer: 'notify-answer', NotifyEnd: 'notify-end' },
  VoipCallDirection: { In: 'in', Out: 'out', Internal: 'internal' },
  VoipCallDisposition: {
    Unknown: 'unknown',
    Answered: 'answered',
    Busy: 'busy',
    Cancel: 'cancel',
    NoAnswer: 'no-answer',
  },
};

/** The parser compiled once, as a script for fresh contexts. */
function compile(file) {
  const source = readFileSync(file, 'utf8').replace(
    /^import\s+[^;]*?from\s+['"]@telehook\/parser['"];?/ms,
    '',
  );
  const { code } = esbuild.transformSync(source, { loader: 'ts', format: 'esm' });
  return new vm.Script(`${code}\nVoipParseWebhookRequest;`, { filename: file });
}

/** One request in a context of its own, as the platform runs it. */
async function parse(script, request) {
  const context = vm.createContext({ ...GLOBALS });
  const handler = script.runInContext(context);
  return JSON.stringify(await handler(request));
}

async function invoke(file, requestFile, runs) {
  const script = compile(file);
  const sample = JSON.parse(readFileSync(requestFile, 'utf8'));
  const request = {
    method: sample.method,
    url: sample.url,
    headers: sample.headers ?? {},
    query: {},
    body: sample.body,
  };
  const times = [];
  for (let i = 0; i < runs; i += 1) {
    const started = process.hrtime.bigint();
    await parse(script, request);
    times.push(Number(process.hrtime.bigint() - started) / 1000);
  }
  times.sort((a, b) => a - b);
  const at = (p) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
  console.log(`RESULT ${at(50).toFixed(1)} ${at(99).toFixed(1)}`);
}

function serve(file, workers) {
  if (cluster.isPrimary && workers > 1) {
    // Workers listening on port 0 share one port, which the primary hands connections from.
    cluster.setupPrimary({ args: ['serve', file, '1'] });
    let listening = 0;
    cluster.on('listening', (_, address) => {
      listening += 1;
      if (listening === workers) {
        console.log(`node vm peer listening on http://127.0.0.1:${address.port}`);
      }
    });
    for (let i = 0; i < workers; i += 1) {
      cluster.fork();
    }
    return;
  }
  const script = compile(file);
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      const url = new URL(req.url, 'http://127.0.0.1');
      const request = {
        method: req.method,
        url: url.href,
        headers: req.headers,
        query: Object.fromEntries(url.searchParams),
        body: chunks.length ? Buffer.concat(chunks).toString('utf8') : undefined,
      };
      try {
        const result = await parse(script, request);
        res.writeHead(200, { 'content-type': 'application/json' }).end(result);
      } catch (error) {
        res.writeHead(400, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: String(error?.message ?? error) }));
      }
    });
  });
  server.listen(0, '127.0.0.1', () => {
    if (cluster.isPrimary) {
      console.log(`node vm peer listening on http://127.0.0.1:${server.address().port}`);
    }
  });
}

const [command, file, ...rest] = process.argv.slice(2);
if (command === 'invoke') {
  await invoke(file, rest[0], Number(rest[1] ?? 2000));
} else if (command === 'serve') {
  serve(file, Number(rest[0] ?? availableParallelism()));
} else {
  console.error('usage: node peer.mjs invoke PARSER.ts REQUEST.json RUNS | serve PARSER.ts [WORKERS]');
  process.exit(2);
}
