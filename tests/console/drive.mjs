#!/usr/bin/env node
// Drives the web console in headless Chromium through what an admin does on day one: sign in,
// create a tenant and an integration, upload the Zadarma parser, set its secret, bind an
// extension, activate, send the provider's samples and watch the live call card ring, get
// answered and end, read the refused request's log, try a version on it, upload a second
// version and roll back. Every step is asserted and leaves a screenshot under $SCREENSHOTS for
// a person to look at; one line per step goes to stdout (`ok 3 upload the Zadarma example`).
//
// Environment:
//   TELEHOOK_URL          where the console is served (`telehook serve`, or console/dev.mjs)
//   TELEHOOK_ADMIN_TOKEN  the admin token
//   ZADARMA_COMPONENT     the built Zadarma parser component (.wasm)
//   ZADARMA_SAMPLES       catalog/zadarma/samples
//   SCREENSHOTS           where the screenshots go (a directory under target/)
//   CHROMIUM              the browser (/usr/bin/chromium unless given)
//   TENANT                the tenant to create (acme unless given)
//
// Exits 0 only if every step passed.
//
// Start telehook with `--parser-timeout-ms 1000` when it is a debug build: a trial run loads
// its version cold, which a debug build can take longer than the default 50 ms to run.

import assert from 'node:assert/strict';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

const WIDE = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const WAIT_MS = 15_000;
/** Compiling an upload takes a while on a debug build. */
const UPLOAD_MS = 120_000;

const config = {
  url: need('TELEHOOK_URL').replace(/\/$/, ''),
  adminToken: need('TELEHOOK_ADMIN_TOKEN'),
  component: need('ZADARMA_COMPONENT'),
  samples: need('ZADARMA_SAMPLES'),
  screenshots: need('SCREENSHOTS'),
  chromium: process.env.CHROMIUM ?? '/usr/bin/chromium',
  tenant: process.env.TENANT ?? 'acme',
  integration: 'zadarma',
  user: 'u-42',
};

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`drive.mjs: set ${name} (see the top of tests/console/drive.mjs)`);
    process.exit(2);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// The samples: a request file as `telehook run` reads it, sent to the webhook as the provider
// would send it (the signature covers the fields, not the URL).

async function sample(name) {
  return JSON.parse(await readFile(join(config.samples, `${name}.request.json`), 'utf8'));
}

/** The form field `name` of a sample's body. */
function field(request, name) {
  return new URLSearchParams(request.body ?? '').get(name);
}

/**
 * The end of the call `notify-start` begins: of the `notify-end-*` samples, one with the same
 * `pbx_call_id` whose expected outcome is an answered end (the call is answered before it).
 */
async function endOf(start) {
  const callId = field(start, 'pbx_call_id');
  const names = (await readdir(config.samples))
    .filter((file) => /^notify-end-.*\.request\.json$/.test(file))
    .map((file) => file.replace(/\.request\.json$/, ''))
    .sort();
  for (const name of names) {
    const request = await sample(name);
    const expected = JSON.parse(await readFile(join(config.samples, `${name}.expected.json`), 'utf8'));
    if (field(request, 'pbx_call_id') === callId && expected.event?.disposition === 'answered') return { name, request };
  }
  throw new Error(`no notify-end-* sample ends the call ${callId} as answered`);
}

async function send(webhookUrl, request) {
  const body = request.body_base64 !== undefined ? Buffer.from(request.body_base64, 'base64') : request.body;
  const answer = await fetch(webhookUrl, { method: request.method, headers: request.headers, body });
  return { status: answer.status, text: await answer.text() };
}

// ---------------------------------------------------------------------------------------------
// Steps: each one asserted, with a screenshot after it.

let page;
let count = 0;
const pageErrors = [];

/** `02-create-tenant.png`: the screenshot of step `count`, or of something within it. */
function shotName(slug, suffix = '') {
  return `${String(count).padStart(2, '0')}${suffix}-${slug}.png`;
}

/**
 * A screenshot: the whole page, or only the window while a modal dialog is open (its backdrop
 * covers the window, not the page).
 */
async function screenshot(name) {
  const modal = (await page.locator('dialog[open]').count()) > 0;
  await page.screenshot({ path: join(config.screenshots, name), fullPage: !modal });
}

/** One step: its action, no error on the page meanwhile, a screenshot, and its line. */
async function step(slug, name, action) {
  count += 1;
  try {
    await action();
    assert.deepEqual(pageErrors, [], 'the page reported errors');
    await screenshot(shotName(slug));
    console.log(`ok ${count} ${name}`);
  } catch (err) {
    console.log(`not ok ${count} ${name}`);
    console.log(`# ${String(err.message ?? err).split('\n').join('\n# ')}`);
    await screenshot(shotName(`${slug}-FAILED`)).catch(() => {});
    throw Object.assign(err, { reported: true });
  }
}

/** The integration's tab `name`, by its link. */
async function openTab(name) {
  const tabs = page.getByRole('navigation', { name: 'Integration' });
  await tabs.getByRole('link', { name, exact: true }).click();
  await tabs.locator('a[aria-current=page]', { hasText: name }).waitFor();
}

async function openIntegration() {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tenants' }).click();
  await page.getByRole('link', { name: config.tenant, exact: true }).click();
  await page.getByRole('link', { name: config.integration, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: config.integration }).waitFor();
}

function versionRow(version) {
  return page.locator(`[data-testid=version][data-version="${version}"]`);
}

async function uploadComponent(expectVersion) {
  await page.getByLabel('Parser component').setInputFiles(config.component);
  await page.getByRole('button', { name: 'Upload and check' }).click();
  const verdict = page.getByTestId('check-result');
  await verdict.waitFor({ timeout: UPLOAD_MS });
  assert.equal(await verdict.getAttribute('data-check'), 'ok', `the check refused the component: ${await verdict.innerText()}`);
  assert.equal(await verdict.getAttribute('data-version'), String(expectVersion));
  await versionRow(expectVersion).waitFor();
}

async function expectActive(version) {
  await page.locator(`[data-testid=version][data-version="${version}"][data-active=true]`).waitFor();
  assert.equal(await page.locator('[data-testid=version][data-active=true]').count(), 1, 'exactly one version is active');
  await page.getByTestId('active-version').filter({ hasText: `Version ${version} active` }).waitFor();
}

function card(providerCallId, state) {
  return page.locator(`[data-testid=call-card][data-provider-call-id="${providerCallId}"][data-state="${state}"]`);
}

async function main() {
  await mkdir(config.screenshots, { recursive: true });
  const browser = await chromium.launch({ executablePath: config.chromium, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: WIDE, colorScheme: 'light' });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (err) => pageErrors.push(`page error: ${err.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) pageErrors.push(`CSP: ${message.text()}`);
  });

  const start = await sample('notify-start');
  const answer = await sample('notify-answer');
  const end = await endOf(start);
  const forged = await sample('forged-signature');
  const callId = field(start, 'pbx_call_id');
  const secret = JSON.parse(await readFile(join(config.samples, 'settings.json'), 'utf8')).api_secret;
  let webhookUrl;

  try {
    await step('sign-in', 'sign in with the admin token', async () => {
      await page.goto(`${config.url}/console`);
      await page.getByLabel('Token').fill(config.adminToken);
      await screenshot(shotName('sign-in-form', 'a'));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { level: 1, name: 'Tenants' }).waitFor();
      assert.equal(await page.getByTestId('whoami').innerText(), 'admin');
    });

    await step('create-tenant', `create the tenant ${config.tenant}`, async () => {
      await page.getByLabel('Id').fill(config.tenant);
      await page.getByRole('textbox', { name: /^Name/ }).fill('Acme Ltd');
      await page.getByRole('button', { name: 'Create tenant' }).click();
      const dialog = page.getByRole('dialog', { name: `Tenant ${config.tenant} created` });
      await dialog.waitFor();
      assert.match(await dialog.getByTestId('tenant-token').inputValue(), /^\S{20,}$/, 'the dialog shows the tenant token');
      await screenshot(shotName('tenant-token', 'a'));
      await dialog.getByRole('button', { name: `Open ${config.tenant}` }).click();
      await page.getByRole('heading', { level: 1, name: /^Integrations/ }).waitFor();
    });

    await step('create-integration', `create the integration ${config.integration}`, async () => {
      await page.getByLabel('Id').fill(config.integration);
      await page.getByRole('button', { name: 'Create integration' }).click();
      await page.getByRole('heading', { level: 1, name: config.integration }).waitFor();
      await page.getByTestId('active-version').filter({ hasText: 'No active version' }).waitFor();
    });

    await step('upload-version-1', 'upload the Zadarma example', async () => {
      await openTab('Versions');
      await uploadComponent(1);
    });

    await step('set-secret', 'set the api_secret setting', async () => {
      await openTab('Settings');
      await page.getByLabel('Key').fill('api_secret');
      await page.getByLabel('Value').fill(secret);
      await page.getByRole('button', { name: 'Set', exact: true }).click();
      await page.getByTestId('setting-key').filter({ hasText: 'api_secret' }).waitFor();
      assert.equal(await page.getByLabel('Value').inputValue(), '', 'the value field is emptied');
      assert.ok(!(await page.content()).includes(secret), 'the secret value appears nowhere on the page');
    });

    await step('bind-extension', `bind extension 101 to ${config.user}`, async () => {
      await openTab('Bindings');
      await page.getByRole('button', { name: 'Add a binding' }).click();
      await page.getByLabel('Extension of row 1').fill('101');
      await page.getByLabel('User id of row 1').fill(config.user);
      await page.getByRole('button', { name: 'Save bindings' }).click();
      await page.getByRole('status').filter({ hasText: '1 binding saved.' }).waitFor();
    });

    await step('activate-version-1', 'activate version 1', async () => {
      await openTab('Versions');
      await page.getByRole('button', { name: 'Activate version 1' }).click();
      await expectActive(1);
    });

    await step('webhook-url', 'read the webhook URL', async () => {
      await openTab('Overview');
      const field = page.getByTestId('webhook-url');
      await field.waitFor();
      webhookUrl = await field.inputValue();
      assert.match(webhookUrl, new RegExp(`/hooks/${config.tenant}/${config.integration}/\\S+$`), 'the webhook URL names the integration');
      await page.getByTestId('breaker-state').filter({ hasText: 'Healthy' }).waitFor();
    });

    await step('live-calls', 'open the live calls', async () => {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Live calls' }).click();
      await page.getByRole('heading', { level: 1, name: 'Live calls' }).waitFor();
      await page.locator('[data-testid=stream-status][data-state=live]').waitFor();
    });

    await step('call-ringing', 'a call rings: its card appears', async () => {
      const { status, text } = await send(webhookUrl, start);
      assert.equal(status, 200, `notify-start answered ${status}: ${text}`);
      const ringing = card(callId, 'ringing');
      await ringing.waitFor();
      assert.match(await ringing.getByTestId('call-from').innerText(), /\+79161234567/);
    });

    await step('call-answered', 'the call is answered: the card says so', async () => {
      const { status, text } = await send(webhookUrl, answer);
      assert.equal(status, 200, `notify-answer answered ${status}: ${text}`);
      await card(callId, 'answered').waitFor();
      assert.equal(await page.locator(`[data-testid=call-card][data-provider-call-id="${callId}"]`).count(), 1, 'one card per call');
    });

    await step('call-ended', `the call ends (${end.name}): the card shows it ended, for ${config.user}`, async () => {
      const { status, text } = await send(webhookUrl, end.request);
      assert.equal(status, 200, `${end.name} answered ${status}: ${text}`);
      const ended = card(callId, 'ended');
      await ended.waitFor();
      await ended.getByTestId('call-users').filter({ hasText: config.user }).waitFor();
    });

    await step('live-calls-phone', 'the live calls on a phone', async () => {
      await page.setViewportSize(PHONE);
      await card(callId, 'ended').waitFor();
      await page.getByRole('button', { name: 'Menu' }).waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
    });

    await step('forged-refused', 'a forged request is refused', async () => {
      await page.setViewportSize(WIDE);
      const { status, text } = await send(webhookUrl, forged);
      assert.equal(status, 401, `forged-signature answered ${status}: ${text}`);
    });

    await step('refused-invocation', 'the refused request: its error and log', async () => {
      await openIntegration();
      await openTab('Invocations');
      await page.getByTestId('activity').locator('.uplot').first().waitFor();
      const refused = page.locator('[data-testid=invocation][data-outcome=rejected]').first();
      await refused.getByRole('button', { name: /open/ }).click();
      const dialog = page.getByRole('dialog', { name: 'Invocation' });
      await dialog.waitFor();
      assert.match(await dialog.getByTestId('invocation-error').innerText(), /signature/i, 'the error names the signature');
      await dialog.getByTestId('invocation-log').waitFor();
      assert.match(await dialog.getByTestId('invocation-request-line').innerText(), /^POST \/hooks\//);
      assert.ok(!(await dialog.innerText()).includes(webhookUrl.split('/').at(-1)), 'the webhook token is redacted');
    });

    await step('trial-run', 'a trial run of version 1 on that request', async () => {
      await page.getByRole('button', { name: 'Trial run with this request' }).click();
      const dialog = page.getByRole('dialog', { name: 'Trial run' });
      await dialog.waitFor();
      await dialog.getByRole('button', { name: 'Run version 1' }).click();
      const result = dialog.getByTestId('trial-result');
      await result.waitFor();
      assert.equal(await result.getAttribute('data-kind'), 'rejected');
      assert.match(await result.getByTestId('trial-error').innerText(), /signature/i);
      await result.getByTestId('trial-log').waitFor();
      await screenshot(shotName('trial-refused', 'a'));

      // The same version on the call's start, taken from the recent invocations: an event.
      const choice = dialog.getByLabel('Start from');
      const okStart = await choice.locator('option').filter({ hasText: /^ok · .* POST event=NOTIFY_START/ }).getAttribute('value');
      await choice.selectOption(okStart);
      await dialog.getByRole('button', { name: 'Run version 1' }).click();
      await dialog.locator('[data-testid=trial-result][data-kind=ok]').waitFor();
      assert.match(await dialog.getByTestId('trial-outcome').innerText(), /"event": "notify_start"/);
    });

    await step('version-2-active', 'upload the same component as version 2 and activate it', async () => {
      await page.keyboard.press('Escape');
      await page.getByRole('dialog').waitFor({ state: 'hidden' });
      await openTab('Versions');
      await uploadComponent(2);
      await page.getByRole('button', { name: 'Activate version 2' }).click();
      await expectActive(2);
    });

    await step('rolled-back', 'roll back to version 1', async () => {
      await page.getByRole('button', { name: 'Roll back' }).click();
      await page.getByTestId('version-status').filter({ hasText: 'Rolled back: version 1 is active.' }).waitFor();
      await expectActive(1);
    });
  } finally {
    await browser.close();
  }
  console.log(`# all ${count} steps passed; screenshots in ${config.screenshots}`);
}

main().catch((err) => {
  // A failed step has said which and why; anything else (no browser, no samples) says it here.
  if (!err?.reported) console.error(`# ${err?.stack ?? err}`);
  process.exit(1);
});
