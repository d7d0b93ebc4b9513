import { describe, expect, it } from 'vitest';
import { peerAddress } from './server.js';

describe('peerAddress', () => {
  it('drops the port (failed logins count per address, not per connection)', () => {
    expect(peerAddress('127.0.0.1:54321')).toBe('127.0.0.1');
    expect(peerAddress('ipv4:10.1.2.3:80')).toBe('10.1.2.3');
    expect(peerAddress('[::1]:54321')).toBe('::1');
    expect(peerAddress('ipv6:[fe80::1]:9')).toBe('fe80::1');
    expect(peerAddress('::1')).toBe('::1');
    expect(peerAddress('unknown')).toBe('unknown');
  });
});
