#!/usr/bin/env node
// `telehook-parser build parser.ts [-o parser.wasm]`: a parser written the platform's way
// becomes a component of the `telehook:parser` contract. esbuild bundles it (TypeScript's
// types stripped, not checked), and componentize-js embeds it in the StarlingMonkey engine with
// every WASI feature left out, so that it imports nothing but the contract.
import { realpathSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { componentize } from '@bytecodealliance/componentize-js';
import * as esbuild from 'esbuild';

const SDK_DIR = path.dirname(fileURLToPath(import.meta.url));
/** The contract version this SDK's imports name (`telehook:parser/host@...`). */
const WIT = path.join(SDK_DIR, 'wit', 'parser.wit');
/** StarlingMonkey's WASI features, none of which a parser is granted. */
const NO_WASI = ['random', 'stdio', 'clocks', 'http', 'fetch-event'];
const HANDLER = 'VoipParseWebhookRequest';

/** The parser's module, with its handler exported when it is declared as the platform's
 * example declares it (a top-level function, not exported). */
function exportHandler(source) {
  const declared = new RegExp(`^\\s*(export\\s+)?(async\\s+)?function\\s*\\*?\\s*${HANDLER}\\b`, 'm');
  const match = source.match(declared);
  return match && !match[1] ? `${source}\nexport { ${HANDLER} };\n` : source;
}

/** Bundles `source` with the SDK's adapter into one ES module, or throws esbuild's errors. */
export async function bundle(source) {
  const entry = [
    `import * as parser from ${JSON.stringify(source)};`,
    `import { exportParser } from '@telehook/parser/guest';`,
    `export const parseWebhookRequest = exportParser(parser.${HANDLER} ?? parser.default);`,
  ].join('\n');
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: path.dirname(source), sourcefile: 'telehook-entry.js' },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    // One copy of the SDK, whatever the parser's folder has installed.
    alias: { '@telehook/parser': SDK_DIR },
    external: ['telehook:parser/*'],
    logLevel: 'silent',
    plugins: [
      {
        name: 'telehook-export-handler',
        setup(build) {
          build.onLoad({ filter: /.*/ }, async (args) => {
            if (args.path !== source) {
              return undefined;
            }
            const text = await readFile(args.path, 'utf8');
            const loader = /\.[cm]?tsx?$/.test(args.path) ? 'ts' : 'js';
            return { contents: exportHandler(text), loader };
          });
        },
      },
    ],
  });
  return result.outputFiles[0].text;
}

/** Builds the component for the parser at `source`, written to `output`. */
export async function build(source, output) {
  const started = Date.now();
  const work = await mkdtemp(path.join(tmpdir(), 'telehook-build-'));
  try {
    const bundled = path.join(work, 'parser.js');
    await writeFile(bundled, await bundle(source));
    const { component } = await componentize({
      sourcePath: bundled,
      witPath: WIT,
      worldName: 'parser',
      disableFeatures: NO_WASI,
    });
    await writeFile(output, component);
    return { bytes: component.length, seconds: (Date.now() - started) / 1000 };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function messageOf(error) {
  if (Array.isArray(error?.errors) && error.errors.length > 0) {
    return error.errors
      .map(({ text, location }) =>
        location ? `${location.file}:${location.line}:${location.column}: ${text}` : text,
      )
      .join('\n');
  }
  return error?.message ?? String(error);
}

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { output: { type: 'string', short: 'o' }, quiet: { type: 'boolean', short: 'q' } },
  });
  const [command, file] = positionals;
  if (command !== 'build' || !file) {
    console.error('usage: telehook-parser build PARSER.ts [-o PARSER.wasm] [--quiet]');
    process.exit(2);
  }
  const source = path.resolve(file);
  const output = path.resolve(values.output ?? source.replace(/\.[cm]?[jt]sx?$/, '') + '.wasm');
  try {
    const { bytes, seconds } = await build(source, output);
    if (!values.quiet) {
      const mib = (bytes / 2 ** 20).toFixed(1);
      console.error(`built ${output} (${mib} MiB) in ${seconds.toFixed(1)} s`);
    }
  } catch (error) {
    console.error(`cannot build ${file}:\n${messageOf(error)}`);
    process.exit(1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  await main();
}
