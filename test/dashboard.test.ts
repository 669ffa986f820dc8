// The dashboard end to end in a real browser: Debian's chromium driven by playwright-core against
// a real server that answered real DNS queries. The page must show them, its "allow" button must
// make the next query for that name answered normally, and names carrying HTML (a DNS label may
// hold <, >, = and spaces; a device name from the config may hold anything) must show as text.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseQuery } from '../server/wire/query.js';
import { addressesOf, makeQuery, udpExchange } from './helpers/dns-client.js';
import { DEFAULT_A } from './helpers/fake-upstream.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
if (!HAS_CHROMIUM) console.warn(`dashboard tests skipped: no browser at ${CHROMIUM} (apt-get install chromium)`);

const TOKEN = 'dashboard-token-0123456789';
const HOSTILE_LABEL = '<img src=x onerror=alert(1)>';
const HOSTILE_DEVICE = '<img src=x onerror="window.__xss=2">Kid\'s <b>tablet</b>';

describe.skipIf(!HAS_CHROMIUM)('the dashboard in a real browser', () => {
  let t: TestServer;
  let browser: Browser;
  let page: Page;
  const ask = (name: string, type = 'A') => udpExchange('127.0.0.1', t.udp4.port, makeQuery(name, type));

  beforeAll(async () => {
    t = await startTestServer({
      lists: { 'telemetry.txt#hosts': '0.0.0.0 tracking.example.com\n0.0.0.0 metrics.example.net\n' },
      flags: { 'api-token': TOKEN, 'querylog-flush-interval': '200ms' },
      config: { devices: { '127.0.0.1': HOSTILE_DEVICE } },
      ipv6: false,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage();
    page.on('dialog', (d) => void d.dismiss());
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('shows the queries it was sent: tiles, top blocked names with their list, devices, live log', async () => {
    for (let i = 0; i < 3; i++) expect(addressesOf(await ask('tracking.example.com'))).toEqual(['0.0.0.0']);
    await ask('metrics.example.net');
    await ask('www.example.org');
    await ask('api.miui.com');
    await t.server.querylog.flush();

    await page.goto(`http://127.0.0.1:${t.http.port}/`);
    const topRow = page.locator('#top-blocked tbody tr', { hasText: 'tracking.example.com' });
    await topRow.waitFor({ timeout: 10_000 });
    expect(await topRow.locator('td').nth(1).textContent()).toBe('3');
    expect(await topRow.textContent()).toContain('file-telemetry.txt');
    await expect.poll(() => page.locator('#tile-total').textContent(), { timeout: 10_000 }).toBe('6');
    expect(await page.locator('#tile-blocked').textContent()).toBe('4');
    expect(await page.locator('#chart rect.blocked').count()).toBeGreaterThanOrEqual(24);
    await page.locator('#tail tbody tr', { hasText: 'www.example.org' }).waitFor({ timeout: 10_000 });
    const devices = await page.locator('#devices').textContent();
    expect(devices).toContain('Xiaomi');
  });

  it('shows a name that carries HTML as text, never as markup', async () => {
    // What a client can put in a label arrives in our presentation form, with \DDD escapes.
    const wire = makeQuery(`${HOSTILE_LABEL}.example.org`, 'A');
    const parsed = parseQuery(wire);
    expect(parsed.ok).toBe(true);
    const presented = parsed.ok ? parsed.query.name : '';
    expect(presented).toBe('\\060img\\032src\\061x\\032onerror\\061alert\\0401\\041\\062.example.org');
    await udpExchange('127.0.0.1', t.udp4.port, wire);
    await t.server.querylog.flush();

    await page.evaluate(() => (window as unknown as { hushdns: { refreshTail(): Promise<void>; refreshStats(): Promise<void> } }).hushdns.refreshTail());
    const row = page.locator('#tail tbody tr', { hasText: 'onerror' }).first();
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('td.name').textContent()).toBe(presented);
    // The device name from the config is raw HTML; it must appear as those characters.
    expect(await page.locator('#devices tbody').textContent()).toContain(HOSTILE_DEVICE);
    expect(await page.locator('#tail tbody').textContent()).toContain(HOSTILE_DEVICE);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('b').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  });

  it('"allow" asks for the API token once, and the next query for that name is answered normally', async () => {
    const button = page.locator('#top-blocked button[data-name="tracking.example.com"]');
    await button.click();
    const dialog = page.locator('#token-dialog');
    await dialog.waitFor({ state: 'visible' });
    await page.fill('#token-input', 'not-the-token-at-all');
    await page.click('#token-save');
    // A refused token is forgotten and asked for again.
    await dialog.waitFor({ state: 'visible' });
    await page.fill('#token-input', TOKEN);
    await page.click('#token-save');
    await expect.poll(() => page.locator('#message').textContent(), { timeout: 10_000 }).toBe('Allowed tracking.example.com');
    expect(await page.evaluate(() => localStorage.getItem('hushdns.apiToken'))).toBe(TOKEN);
    expect(addressesOf(await ask('tracking.example.com'))).toEqual([DEFAULT_A]);
    expect(t.server.userRules.list()).toMatchObject([{ action: 'allow', name: 'tracking.example.com', scope: 'subtree' }]);
  });

  it('pauses and resumes blocking with the stored token', async () => {
    await page.selectOption('#pause-minutes', '5');
    await page.click('#pause');
    await expect.poll(() => page.locator('#pause').textContent(), { timeout: 10_000 }).toBe('Resume blocking');
    expect(addressesOf(await ask('metrics.example.net'))).toEqual([DEFAULT_A]);
    expect(await page.locator('#status').textContent()).toMatch(/paused/i);
    await page.click('#pause');
    await expect.poll(() => page.locator('#pause').textContent(), { timeout: 10_000 }).toBe('Pause blocking');
    // Answered from upstream (and cached) while paused; blocked again now, cache or not.
    expect(addressesOf(await ask('metrics.example.net'))).toEqual(['0.0.0.0']);
  });

  it('pauses blocking for one device from its row, and resumes it', async () => {
    await page.evaluate(() => (window as unknown as { hushdns: { refreshStats(): Promise<void> } }).hushdns.refreshStats());
    const row = page.locator('#devices tbody tr[data-client="127.0.0.1"]');
    const button = row.locator('button.device-pause');
    await expect.poll(() => button.textContent(), { timeout: 10_000 }).toBe('Pause');
    // The device's name (raw HTML from the config) reaches the button only as text.
    expect(await button.getAttribute('title')).toBe(`Pause blocking for ${HOSTILE_DEVICE} only`);
    await button.click();
    await expect.poll(() => row.locator('button.device-pause').textContent(), { timeout: 10_000 }).toBe('Resume');
    expect(t.server.pause.state()).toMatchObject({ everyone: null, clients: [{ client: '127.0.0.1' }] });
    expect(addressesOf(await ask('metrics.example.net'))).toEqual([DEFAULT_A]);
    expect(await page.locator('#status').textContent()).toMatch(/paused for 1 device/);
    expect(await row.textContent()).toMatch(/until /);
    // Its query counts show their outcomes on hover, as text.
    expect(await row.locator('td').nth(1).getAttribute('title')).toMatch(/blocked \d+/);
    await row.locator('button.device-pause').click();
    await expect.poll(() => row.locator('button.device-pause').textContent(), { timeout: 10_000 }).toBe('Pause');
    expect(t.server.pause.state().clients).toEqual([]);
    expect(addressesOf(await ask('metrics.example.net'))).toEqual(['0.0.0.0']);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  });

  it('is served with a Content-Security-Policy that forbids inline script', async () => {
    const res = await page.request.get(`http://127.0.0.1:${t.http.port}/`);
    expect(res.headers()['content-security-policy']).toMatch(/script-src 'self'/);
    expect(res.headers()['content-security-policy']).not.toMatch(/unsafe-inline/);
  });
});
