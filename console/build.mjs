#!/usr/bin/env node
// Builds the console into the files `telehook serve` embeds, in
// crates/server/src/http/console/assets/: index.html, console.js and console.css.
//
//   node console/build.mjs           writes them (and prints their sizes)
//   node console/build.mjs --check   builds in memory and exits 1 naming each committed file
//                                    that differs, or is missing, or should not be there
//
// The output depends on the sources and the locked packages only: minified, no source map,
// no timestamps, no absolute paths, so that the same commit builds the same bytes anywhere
// and CI can tell stale assets from fresh ones.

import { readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import * as esbuild from 'esbuild';

export const consoleDir = dirname(fileURLToPath(import.meta.url));
export const assetsDir = join(consoleDir, '..', 'crates', 'server', 'src', 'http', 'console', 'assets');

/** The esbuild options both the build and `dev.mjs --watch` use. */
export function options() {
  return {
    absWorkingDir: consoleDir,
    entryPoints: [
      { in: 'src/main.tsx', out: 'console' },
      { in: 'src/console.css', out: 'console' },
    ],
    outdir: assetsDir,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome111', 'firefox114', 'safari16.4'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    define: { 'process.env.NODE_ENV': '"production"' },
    charset: 'utf8',
    legalComments: 'eof',
    sourcemap: false,
    logLevel: 'warning',
  };
}

/** Every file of the build: name -> bytes. */
async function build() {
  const result = await esbuild.build({ ...options(), write: false });
  const files = new Map();
  for (const file of result.outputFiles) files.set(relative(assetsDir, file.path), Buffer.from(file.contents));
  files.set('index.html', await readFile(join(consoleDir, 'index.html')));
  return files;
}

async function check(files) {
  const committed = await readdir(assetsDir).catch(() => []);
  const stale = [];
  for (const [name, bytes] of files) {
    const current = await readFile(join(assetsDir, name)).catch(() => null);
    if (!current) stale.push(`${name} is missing`);
    else if (!current.equals(bytes)) stale.push(`${name} differs from a fresh build`);
  }
  for (const name of committed) if (!files.has(name)) stale.push(`${name} is not part of the build`);
  if (stale.length) {
    for (const line of stale) console.error(`console assets are stale: ${join(relative(process.cwd(), assetsDir), line)}`);
    console.error('run `node console/build.mjs` and commit crates/server/src/http/console/assets/');
    process.exit(1);
  }
  console.log('console assets are up to date');
}

async function write(files) {
  await mkdir(assetsDir, { recursive: true });
  for (const [name, bytes] of files) {
    await writeFile(join(assetsDir, name), bytes);
    const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
    console.log(`${name.padEnd(12)} ${kib(bytes.length).padStart(10)}  (${kib(gzipSync(bytes, { level: 9 }).length)} gzipped)`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = await build();
  if (process.argv.includes('--check')) await check(files);
  else await write(files);
}
