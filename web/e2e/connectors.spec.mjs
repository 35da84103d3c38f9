// Browser tests of the connectors page, run with `node --test` against a
// running service (web/e2e_test.go starts one and runs this file):
//
//   MCP_E2E_BASE_URL=http://127.0.0.1:8001 MCP_E2E_API_KEY=… MCP_E2E_USER=e2e-user \
//     node --test web/e2e/connectors.spec.mjs
//
// Optional: CHROMIUM (default /usr/bin/chromium), MCP_E2E_OUT (screenshots,
// default web/e2e/out/), MCP_E2E_PG_HOST/PORT/DATABASE/USER/PASSWORD.
//
// The tests run in order, in one tab, like a person going through the page.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.MCP_E2E_BASE_URL || '').replace(/\/+$/, '');
const KEY = process.env.MCP_E2E_API_KEY || '';
const USER = process.env.MCP_E2E_USER || `e2e-user-${process.pid}`;
const PG = {
  host: process.env.MCP_E2E_PG_HOST || '127.0.0.1',
  port: String(process.env.MCP_E2E_PG_PORT || 5432),
  database: process.env.MCP_E2E_PG_DATABASE || 'test',
  user: process.env.MCP_E2E_PG_USER || 'postgres',
  // The local server trusts local connections, so any password is accepted.
  password: process.env.MCP_E2E_PG_PASSWORD || 'e2e-password',
};
const OUT = process.env.MCP_E2E_OUT
  ? path.resolve(process.env.MCP_E2E_OUT)
  : fileURLToPath(new URL('./out/', import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WIDE = { width: 1280, height: 900 };
const NARROW = { width: 375, height: 812 };
const TEST = { timeout: 120_000 };

let context;
let page;
let userDataDir;
const pageErrors = [];
const cspViolations = [];
const keyLeaks = [];
const navigations = [];
let dbId = '';

const ui = (suffix = '') => `${BASE}/ui/${suffix}`;

/**
 * Screenshots at 1280 and 375 px; at 375 px the page may not scroll sideways.
 * `show` names an element to scroll into view first (e.g. inside the dialog).
 */
async function snap(name, { show } = {}) {
  fs.mkdirSync(OUT, { recursive: true });
  // With a modal dialog open, the screen as the user sees it; else the whole page.
  const fullPage = !(await page.evaluate(() => Boolean(document.querySelector('dialog[open]'))));
  await page.setViewportSize(WIDE);
  await page.screenshot({ path: path.join(OUT, `${name}-1280.png`), fullPage });
  await page.setViewportSize(NARROW);
  if (show) await page.locator(show).scrollIntoViewIfNeeded();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.screenshot({ path: path.join(OUT, `${name}-375.png`), fullPage });
  await page.setViewportSize(WIDE);
  assert.ok(width <= 375, `${name}: the page scrolls sideways at 375px (scrollWidth ${width})`);
}

const text = async (selector) => ((await page.locator(selector).textContent()) ?? '').trim();

/** Waits until the element's text is not empty, and returns it. */
async function waitText(selector, timeout = 30_000) {
  await page.waitForFunction((s) => (document.querySelector(s)?.textContent ?? '').trim() !== '', selector, { timeout });
  return text(selector);
}

const card = (slug) => page.locator(`.grid [data-connector="${slug}"]`);

async function expectCardState(slug, state) {
  await page.waitForFunction(([s, st]) => document.querySelector(`.grid [data-connector="${s}"]`)?.dataset.state === st,
    [slug, state], { timeout: 20_000 });
}

async function signInWithForm(key, user) {
  await page.fill('#login-key', key);
  await page.fill('#login-user', user);
  await page.press('#login-user', 'Enter');
}

describe('connectors page', { concurrency: 1 }, () => {
  before(async () => {
    assert.ok(BASE, 'MCP_E2E_BASE_URL must name the running service, e.g. http://127.0.0.1:8001');
    assert.ok(KEY, 'MCP_E2E_API_KEY must be the service\'s AGENT_API_KEY');
    assert.ok(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`);
    // Fail fast, with the reason, when the service does not serve the page.
    const res = await fetch(ui(), { signal: AbortSignal.timeout(10_000) });
    assert.ok(res.ok && /text\/html/.test(res.headers.get('content-type') ?? ''),
      `GET ${ui()} answered HTTP ${res.status} ${res.headers.get('content-type')}: the service must serve web.Handler() at /ui/`);
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-e2e-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, args: ARGS, viewport: WIDE, locale: 'en-US',
    });
    page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content[- ]Security[- ]Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on('request', (r) => {
      const u = new URL(r.url());
      u.hash = ''; // a fragment is never sent
      if (u.href.includes(KEY) || u.href.includes(encodeURIComponent(KEY))) keyLeaks.push(u.pathname);
    });
    // Every hop of a top-level navigation, redirects included.
    page.on('request', (r) => { if (r.isNavigationRequest() && r.frame() === page.mainFrame()) navigations.push(r.url()); });
  });

  after(async () => {
    await context?.close();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  it('login: the keyboard reaches the fields and buttons, and a wrong key is refused', TEST, async () => {
    await page.goto(ui());
    await page.locator('#login-view').waitFor({ state: 'visible' });
    const reached = [];
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('Tab');
      reached.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName));
    }
    for (const id of ['login-key', 'login-user', 'login-submit']) {
      assert.ok(reached.includes(id), `Tab never reached #${id}; it reached ${reached.join(', ')}`);
    }
    // Focus is visible on the button reached by keyboard.
    await page.focus('#login-key');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'login-submit');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused button shows no outline');

    // Typed and submitted with the keyboard only.
    await page.focus('#login-key');
    await page.keyboard.type('not-the-right-key');
    await page.keyboard.press('Tab');
    await page.keyboard.type(USER);
    await page.keyboard.press('Enter');
    const error = await waitText('#login-error');
    assert.match(error, /X-API-Key|key/i);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('mcp.apiKey')), null, 'a refused key was stored');
    assert.ok(await page.locator('#app-view').isHidden());
    await snap('01-login-refused');
  });

  it('login: the key and user id sign in, kept in sessionStorage only', TEST, async () => {
    await signInWithForm(KEY, USER);
    await page.locator('#app-view').waitFor({ state: 'visible' });
    for (const slug of ['gmail', 'slack', 'bigquery', 'postgres', 'mysql', 'redis', 'mongodb']) {
      await card(slug).waitFor({ state: 'visible' });
    }
    assert.equal(await page.evaluate(() => sessionStorage.getItem('mcp.apiKey')), KEY);
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing may be kept in localStorage');
    assert.equal(await text('#session-user'), USER);
    assert.equal(await page.locator('#login-key').inputValue(), '', 'the key stays in the form');
    await snap('02-connectors');
  });

  it('login: a #key=…&user=… fragment signs in and leaves the address bar', TEST, async () => {
    await page.click('#logout');
    await page.locator('#login-view').waitFor({ state: 'visible' });
    assert.equal(await page.evaluate(() => sessionStorage.getItem('mcp.apiKey')), null);
    await page.goto('about:blank');
    await page.goto(ui(`#key=${encodeURIComponent(KEY)}&user=${encodeURIComponent(USER)}`));
    await page.locator('#app-view').waitFor({ state: 'visible' });
    await page.waitForFunction(() => window.location.hash === '');
    assert.ok(!page.url().includes('key='), `the key is still in the address bar: ${page.url()}`);
    assert.equal(await text('#session-user'), USER);
  });

  it('PostgreSQL: a bad database is reported beside Test Connection, a good one passes, Connect saves without a reload', TEST, async () => {
    await page.evaluate(() => { window.__e2eSamePage = true; });
    await expectCardState('postgres', 'available');
    await card('postgres').getByRole('button', { name: 'Connect PostgreSQL' }).click();
    const dialog = page.locator('#db-dialog');
    await dialog.waitFor({ state: 'visible' });
    assert.match(await text('#db-dialog-title'), /PostgreSQL/);

    // Only the schema's fields, each with a label; required ones marked.
    const names = await page.locator('#db-fields input').evaluateAll((els) => els.map((e) => e.name));
    for (const n of ['connection_name', 'host', 'port', 'database', 'username', 'password', 'ssl']) {
      assert.ok(names.includes(n), `the form has no ${n} field (it has ${names.join(', ')})`);
    }
    assert.ok(!names.includes('allow_writes'), 'the form invented an allow_writes field');
    for (const n of names) {
      const id = await page.locator(`#db-fields [name="${n}"]`).getAttribute('id');
      assert.equal(await page.locator(`label[for="${id}"]`).count(), 1, `field ${n} has no <label for>`);
    }
    const host = page.locator('#db-fields [name="host"]');
    assert.equal(await host.getAttribute('aria-required'), 'true');
    assert.equal(await host.evaluate((e) => e.required), true);
    assert.equal(await page.locator('#db-fields [name="port"]').inputValue(), '5432', 'the port default is not filled in');
    assert.equal(await page.locator('#db-fields [name="port"]').getAttribute('type'), 'number');
    assert.equal(await page.locator('#db-fields [name="password"]').getAttribute('type'), 'password');
    assert.equal(await page.locator('#db-fields [name="ssl"]').getAttribute('type'), 'checkbox');

    await page.fill('#db-fields [name="connection_name"]', 'E2E Postgres');
    await host.fill(PG.host);
    await page.fill('#db-fields [name="port"]', PG.port);
    await page.fill('#db-fields [name="database"]', 'no_such_database_e2e');
    await page.fill('#db-fields [name="username"]', PG.user);
    await page.fill('#db-fields [name="password"]', 'wrong-password');

    const [testReq] = await Promise.all([
      page.waitForRequest((r) => r.url().endsWith('/api/databases/test')),
      page.click('#db-test'),
    ]);
    const sent = testReq.postDataJSON();
    assert.equal(sent.db_type, 'postgres');
    assert.equal(sent.port, Number(PG.port), 'port must be sent as a number');
    assert.equal(sent.ssl, false, 'ssl must be sent as a boolean');
    assert.equal(sent.name, 'E2E Postgres');
    assert.equal(sent.connection_name, 'E2E Postgres');
    const failure = await waitText('#db-test-error');
    assert.ok(failure.length > 10, `the failure message is too short: ${failure}`);
    assert.equal(await page.locator('.actions:has(#db-test) [role="alert"]').count(), 1, 'the error is not beside Test Connection');
    await snap('03-db-test-failed', { show: '#db-test-error' });

    await page.fill('#db-fields [name="database"]', PG.database);
    await page.click('#db-test');
    const ok = await waitText('#db-test-status');
    assert.match(ok, /success/i);
    assert.equal(await text('#db-test-error'), '');
    assert.equal(await page.locator('#db-test-status').getAttribute('role'), 'status');
    await snap('04-db-test-ok', { show: '#db-test-status' });

    const [connectReq] = await Promise.all([
      page.waitForRequest((r) => r.url().endsWith('/api/databases/connect')),
      page.click('#db-connect'),
    ]);
    const body = connectReq.postDataJSON();
    assert.equal(body.user_id, USER);
    assert.equal(body.name, 'E2E Postgres');
    assert.equal(body.port, Number(PG.port));
    await dialog.waitFor({ state: 'hidden' });
    await expectCardState('postgres', 'connected');
    assert.match(await card('postgres').textContent(), /Connected/);
    const item = page.locator('#connected-dbs li[data-db-id]', { hasText: 'E2E Postgres' });
    await item.waitFor({ state: 'visible' });
    dbId = await item.getAttribute('data-db-id');
    assert.match(dbId, /^db_/);
    assert.match(await item.textContent(), new RegExp(PG.host.replace(/\./g, '\\.')));
    assert.equal(await page.evaluate(() => window.__e2eSamePage), true, 'the page was reloaded');
    await snap('05-db-connected');
  });

  it('tool panel: DB_QUERY runs and its rows show as a table', TEST, async () => {
    const action = `DB_QUERY_${dbId}`;
    await page.waitForFunction((a) => [...document.querySelectorAll('#tool-select option')].some((o) => o.value === a), action);
    await page.selectOption('#tool-select', action);
    const prefill = JSON.parse(await page.locator('#tool-params').inputValue());
    assert.ok('query' in prefill, `the parameters are not pre-filled from input_schema: ${JSON.stringify(prefill)}`);
    await page.fill('#tool-params', '{"query":"SELECT 1 AS one, \'x\' AS two"}');
    await page.click('#run-tool');
    const table = page.locator('#tool-result table');
    await table.waitFor({ state: 'visible' });
    assert.deepEqual(await table.locator('thead th').allTextContents(), ['one', 'two']);
    assert.deepEqual(await table.locator('tbody tr').first().locator('td').allTextContents(), ['1', 'x']);
    assert.equal(await table.locator('tbody tr').count(), 1);
    assert.match(await waitText('#run-status'), /1 row/);
    assert.equal(await page.locator('#tool-result .notice-warn').count(), 0, 'a truncated notice without truncation');
    await snap('06-tool-rows');

    // A row cap: the page says the result was truncated.
    await page.fill('#tool-params', '{"query":"SELECT n, n * 2 AS twice FROM generate_series(1, 5) AS n","max_rows":2}');
    await page.click('#run-tool');
    await page.locator('#tool-result .notice-warn').waitFor();
    assert.match(await text('#tool-result .notice-warn'), /truncated/i);
    assert.equal(await page.locator('#tool-result tbody tr').count(), 2);
    await snap('07-tool-truncated');
  });

  it('errors: invalid JSON is refused without a request; invalid SQL shows the service error beside Run', TEST, async () => {
    let executes = 0;
    const count = (r) => { if (r.url().endsWith('/api/tools/execute')) executes++; };
    page.on('request', count);
    await page.fill('#tool-params', '{"query": ');
    await page.click('#run-tool');
    assert.match(await waitText('#run-error'), /JSON/);
    await page.waitForTimeout(300);
    assert.equal(executes, 0, 'invalid JSON was sent');

    await page.fill('#tool-params', '{"query":"SELECT FROM WHERE"}');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/tools/execute')),
      page.click('#run-tool'),
    ]);
    assert.equal(response.status(), 422, 'an SQL error is a 422');
    await page.waitForFunction(() => !/JSON/.test(document.querySelector('#run-error')?.textContent ?? '') &&
      (document.querySelector('#run-error')?.textContent ?? '').trim() !== '', null, { timeout: 30_000 });
    page.off('request', count);
    assert.equal(executes, 1);
    const error = await text('#run-error');
    assert.equal(error, (await response.json()).error, 'the page shows the service\'s own message');
    assert.match(error, /syntax/i);
    assert.equal(await page.locator('.actions:has(#run-tool) [role="alert"]').count(), 1, 'the error is not beside Run');
    assert.equal(await page.locator('#tool-result table').count(), 0);
    await snap('08-tool-error');
  });

  it('saved database: the status shows, Re-test records it, Edit saves and keeps the id', TEST, async () => {
    const row = `#connected-dbs li[data-db-id="${dbId}"]`;
    const item = page.locator(row);
    assert.match(await item.textContent(), /Status: connected \(not tested yet\)/);
    const [retestReq] = await Promise.all([
      page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith(`/api/databases/${dbId}/test`)),
      item.getByRole('button', { name: /^Re-test/ }).click(),
    ]);
    assert.deepEqual(retestReq.postDataJSON(), { user_id: USER });
    assert.match(await waitText(`${row} .msg-ok`), /success/i);
    assert.match(await text(row), /Status: connected \(tested /, 'the re-test is not shown as recorded');
    await snap('08b-db-retested');

    await page.locator(row).getByRole('button', { name: /^Edit/ }).click();
    const dialog = page.locator('#db-dialog');
    await dialog.waitFor({ state: 'visible' });
    assert.match(await text('#db-dialog-title'), /Edit E2E Postgres/);
    assert.equal(await page.locator('#db-fields [name="connection_name"]').inputValue(), 'E2E Postgres');
    assert.equal(await page.locator('#db-fields [name="host"]').inputValue(), PG.host);
    assert.equal(await page.locator('#db-fields [name="port"]').inputValue(), PG.port);
    assert.equal(await page.locator('#db-fields [name="password"]').inputValue(), '', 'the edit form shows a secret');
    assert.equal(await page.locator('#db-fields [name="password"]').evaluate((e) => e.required), false);
    assert.equal(await page.locator('#db-test').isVisible(), false);
    await snap('08c-db-edit-form');
    await page.fill('#db-fields [name="connection_name"]', 'E2E Postgres Renamed');
    const [patchReq] = await Promise.all([
      page.waitForRequest((r) => r.method() === 'PATCH' && r.url().endsWith(`/api/databases/${dbId}`)),
      page.click('#db-connect'),
    ]);
    const body = patchReq.postDataJSON();
    assert.equal(body.user_id, USER);
    assert.equal(body.name, 'E2E Postgres Renamed');
    assert.ok(!('password' in body), 'an empty password field was sent');
    await dialog.waitFor({ state: 'hidden' });
    await page.locator(row, { hasText: 'E2E Postgres Renamed' }).waitFor();
    assert.match(await text(row), /Status: connected \(tested /, 'a rename lost the last test');
    await page.waitForFunction((a) => [...document.querySelectorAll('#tool-select option')].some((o) => o.value === a), `DB_QUERY_${dbId}`);
    await snap('08d-db-edited');
  });

  it('disconnect: asks first, then the card returns to Connect', TEST, async () => {
    const item = page.locator(`#connected-dbs li[data-db-id="${dbId}"]`);
    // Declining the confirmation keeps the database.
    page.once('dialog', (d) => d.dismiss());
    await item.getByRole('button', { name: /Disconnect/ }).click();
    await page.waitForTimeout(300);
    assert.equal(await item.count(), 1, 'dismissing the confirmation still disconnected');

    let asked = '';
    page.once('dialog', (d) => { asked = `${d.type()}: ${d.message()}`; d.accept(); });
    await item.getByRole('button', { name: /Disconnect/ }).click();
    await item.waitFor({ state: 'detached' });
    assert.match(asked, /^confirm: .*E2E Postgres/);
    await expectCardState('postgres', 'available');
    await card('postgres').getByRole('button', { name: 'Connect PostgreSQL' }).waitFor();
    await page.waitForFunction((a) => ![...document.querySelectorAll('#tool-select option')].some((o) => o.value === a), `DB_QUERY_${dbId}`);
    await snap('09-db-disconnected');
  });

  it('OAuth: Gmail Connect goes through the sandbox consent and back, and the card shows Connected', TEST, async () => {
    await expectCardState('gmail', 'available');
    if (await page.locator('#banner').isVisible()) await page.click('#banner-close');
    navigations.length = 0;
    const [connectReq] = await Promise.all([
      page.waitForRequest((r) => r.url().endsWith('/api/integrations/connect')),
      card('gmail').getByRole('button', { name: 'Connect Gmail' }).click(),
    ]);
    const body = connectReq.postDataJSON();
    assert.equal(body.provider, 'gmail');
    assert.equal(body.user_id, USER);
    assert.equal(body.redirect_url, ui());

    // The sandbox may answer with a page to click through, or redirect at once.
    const deadline = Date.now() + 60_000;
    for (;;) {
      assert.ok(Date.now() < deadline, `the OAuth round trip did not come back; navigations: ${navigations.join(' -> ')}`);
      const here = new URL(page.url());
      const back = navigations.length > 1 && here.pathname === '/ui/' && here.search === '';
      if (back && /Gmail/.test(await page.locator('#banner-text').textContent().catch(() => '') ?? '')) break;
      if (!here.pathname.startsWith('/ui/')) {
        const consent = page.getByRole('button', { name: /allow|approve|authori[sz]e|accept|continue|grant/i })
          .or(page.getByRole('link', { name: /allow|approve|authori[sz]e|accept|continue|grant/i }));
        if (await consent.count().catch(() => 0)) await consent.first().click().catch(() => {});
      }
      await page.waitForTimeout(250);
    }
    assert.ok(navigations.some((u) => !u.startsWith(ui())), `the browser never left the page: ${navigations.join(' -> ')}`);
    assert.ok(navigations.some((u) => /\/ui\/\?.*status=success/.test(u) && /provider=gmail/.test(u)),
      `never came back with ?status=success&provider=gmail: ${navigations.join(' -> ')}`);
    assert.equal(await text('#banner-text'), '✓ Gmail connected successfully!');
    await page.waitForFunction(() => window.location.search === '');
    await expectCardState('gmail', 'connected');
    assert.match(await card('gmail').textContent(), /Connected/);
    await page.locator('#connected-apps li[data-provider="gmail"]').waitFor();
    await snap('10-oauth-connected');

    page.once('dialog', (d) => d.accept());
    await page.locator('#connected-apps li[data-provider="gmail"]').getByRole('button', { name: /Disconnect/ }).click();
    await expectCardState('gmail', 'available');
    await page.locator('#connected-apps li[data-provider="gmail"]').waitFor({ state: 'detached' });
  });

  it('degraded: without Composio the OAuth cards stay, disabled, with the message; a network error is shown', TEST, async () => {
    // The browser stands in for a server without COMPOSIO_API_KEY, and for a dropped connection.
    const notConfigured = {
      status: 503,
      contentType: 'application/json',
      body: JSON.stringify({ success: false, error: 'OAuth integrations are not configured on this server (e2e)', code: 'composio_not_configured' }),
    };
    const integrations = (route) => route.fulfill(notConfigured);
    const tools = (route) => route.abort('connectionreset');
    await page.route(/\/api\/integrations(\/connected)?(\?.*)?$/, integrations);
    await page.route(/\/api\/tools\?/, tools);
    try {
      await page.click('#refresh');
      for (const slug of ['gmail', 'slack', 'bigquery']) {
        await expectCardState(slug, 'unavailable');
        assert.match(await card(slug).textContent(), /not configured on this server \(e2e\)/);
        assert.equal(await card(slug).getByRole('button', { name: /Connect/ }).isDisabled(), true);
      }
      await expectCardState('postgres', 'available');
      assert.match(await waitText('#tools-error'), /network|reached/i);
      await snap('11-degraded');
    } finally {
      await page.unroute(/\/api\/integrations(\/connected)?(\?.*)?$/, integrations);
      await page.unroute(/\/api\/tools\?/, tools);
    }
    await page.click('#refresh');
    await expectCardState('gmail', 'available');
    assert.equal(await text('#tools-error'), '');
  });

  it('a 401 sends the user back to the login form with the message', TEST, async () => {
    await page.evaluate(() => sessionStorage.setItem('mcp.apiKey', 'a-key-that-was-revoked'));
    await page.click('#refresh');
    await page.locator('#login-view').waitFor({ state: 'visible' });
    assert.match(await waitText('#login-error'), /X-API-Key|key/i);
    assert.equal(await page.locator('#login-user').inputValue(), USER, 'the user id should stay filled in');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('mcp.apiKey')), null);
    await snap('12-unauthorized');
  });

  it('the page raised no script errors, broke no CSP rule and never put the key in a URL', TEST, () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspViolations, []);
    assert.deepEqual(keyLeaks, []);
  });
});
