import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, envName, FIELDS, loadConfig, parseCidr, parseDuration, parseIp } from '../common/config.js';
import { tempDir } from './helpers/temp.js';

describe('configuration', () => {
  it('uses the embedded defaults when nothing is given', () => {
    const { config, origins } = loadConfig({ env: {} });
    expect(config['data-dir']).toBe('./data');
    expect(config['dns-listen']).toEqual(['0.0.0.0:53', '[::]:53']);
    expect(config['upstream-timeout']).toBe(2000);
    expect(config['refresh-interval']).toBe(24 * 3600 * 1000);
    expect(origins['block-mode']).toBe('default');
  });

  it('takes flags over environment over config file over defaults', () => {
    const dir = tempDir();
    const file = join(dir, 'hushdns.yaml');
    writeFileSync(file, 'block-mode: nodata\nblock-ttl: 5m\ncache-size: 10\nallow:\n  - example.org\n');
    const { config, origins } = loadConfig({
      file,
      env: { HUSHDNS_BLOCK_MODE: 'nxdomain', HUSHDNS_CACHE_SIZE: '20' },
      flags: { 'cache-size': 30 },
    });
    expect(config['block-mode']).toBe('nxdomain');
    expect(origins['block-mode']).toBe('env');
    expect(config['cache-size']).toBe(30);
    expect(origins['cache-size']).toBe('flag');
    expect(config['block-ttl']).toBe(300_000);
    expect(origins['block-ttl']).toBe('file');
    expect(config.allow).toEqual(['example.org']);
  });

  it('reads a bare YAML `block-mode: null` as the null block mode, not as a missing value', () => {
    const file = join(tempDir(), 'hushdns.yaml');
    writeFileSync(file, 'block-mode: null\n');
    const { config, origins } = loadConfig({ file, env: {} });
    expect(config['block-mode']).toBe('null');
    expect(origins['block-mode']).toBe('file');
  });

  it('reads JSON config files too', () => {
    const dir = tempDir();
    const file = join(dir, 'hushdns.json');
    writeFileSync(file, JSON.stringify({ 'dns-listen': ['127.0.0.1:5353'], level: 'strict' }));
    const { config } = loadConfig({ file, env: {} });
    expect(config['dns-listen']).toEqual(['127.0.0.1:5353']);
    expect(config.level).toBe('strict');
  });

  it('reports every problem together, naming the key, the value, where it came from and what is allowed', () => {
    let err: unknown;
    try {
      loadConfig({
        env: { HUSHDNS_RATE_LIMIT: 'lots' },
        flags: { 'block-mode': 'explode', 'dns-listen': ['127.0.0.1'], 'upstream-timeout': '1 fortnight' },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(4);
    expect(problems.find((p) => p.startsWith('block-mode'))).toMatch(/from --block-mode.*one of null, nxdomain, nodata, refused, custom/);
    expect(problems.find((p) => p.startsWith('rate-limit'))).toMatch(/from HUSHDNS_RATE_LIMIT.*whole number/);
    expect(problems.find((p) => p.startsWith('dns-listen[0]'))).toMatch(/HOST:PORT/);
    expect(problems.find((p) => p.startsWith('upstream-timeout'))).toMatch(/duration such as/);
  });

  it('rejects unknown keys in the config file and cross-field mistakes', () => {
    const dir = tempDir();
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'blok-mode: nxdomain\nblock-mode: custom\nlocal-upstream: udp://192.168.1.1:53\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/blok-mode \(in .*bad\.yaml\): unknown setting[\s\S]*block-ip: --block-mode custom needs[\s\S]*local-domain/);
  });

  it('says what is wrong with an unreadable config file', () => {
    const dir = tempDir();
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'dns-listen: [unclosed\n');
    expect(() => loadConfig({ file, env: {} })).toThrow(/config file .*broken\.yaml/);
    expect(() => loadConfig({ file: join(dir, 'missing.yaml'), env: {} })).toThrow(/missing\.yaml.*ENOENT/);
  });

  it('gives every setting an obvious environment twin', () => {
    expect(envName('block-mode')).toBe('HUSHDNS_BLOCK_MODE');
    expect(envName('dns-listen')).toBe('HUSHDNS_DNS_LISTEN');
    for (const [name, def] of Object.entries(FIELDS)) {
      expect(def.help.length, `${name} needs a help line`).toBeGreaterThan(10);
      if (def.fileOnly) continue;
      const sample: Record<string, string> = { 'block-ip': '192.0.2.1', source: './my-list.txt', 'local-domain': 'lan', 'local-upstream': 'udp://192.168.1.1:53' };
      const value = sample[name] ?? String(Array.isArray(def.default) ? (def.default as unknown[]).join(',') : def.default);
      const env = { [envName(name)]: value, ...(name === 'local-upstream' ? { HUSHDNS_LOCAL_DOMAIN: 'lan' } : {}) };
      const { origins } = loadConfig({ env });
      expect(origins[name as keyof typeof FIELDS]).toBe('env');
    }
  });

  it('parses durations, addresses and ranges', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2')).toBe(2000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('soon')).toBeNull();
    expect(parseIp('192.168.1.2')).toEqual(Buffer.from([192, 168, 1, 2]));
    expect(parseIp('::1')!.toString('hex')).toBe('00000000000000000000000000000001');
    expect(parseIp('fe80::1%lo0')!.toString('hex')).toBe('fe800000000000000000000000000001');
    expect(parseIp('::ffff:10.0.0.1')!.toString('hex')).toBe('00000000000000000000ffff0a000001');
    expect(parseIp('2001:db8::')!.toString('hex')).toBe('20010db8000000000000000000000000');
    expect(parseIp('256.1.1.1')).toBeNull();
    expect(parseIp('example.org')).toBeNull();
    expect(parseCidr('10.0.0.0/8')).toEqual({ bytes: Buffer.from([10, 0, 0, 0]), prefix: 8 });
    expect(parseCidr('fd00::/129')).toBeNull();
  });
});
