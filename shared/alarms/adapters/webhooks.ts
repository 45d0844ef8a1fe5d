import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import type { WebhookSender } from '../domain/notifications.ts';
import type { WebhookAddressPolicy } from '../domain/ports.ts';

/**
 * Addresses a webhook must never reach from inside the platform: loopback, private
 * (RFC 1918, unique-local), link-local (the instance metadata service at 169.254.169.254),
 * carrier-grade NAT, "this network", multicast and reserved ranges.
 */
const FORBIDDEN = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  FORBIDDEN.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  FORBIDDEN.addSubnet(network, prefix, 'ipv6');
}

export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 6) {
    // An IPv4 address written as IPv6 (::ffff:127.0.0.1) is judged as the IPv4 it is.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return FORBIDDEN.check(mapped[1] as string, 'ipv4');
    return FORBIDDEN.check(address, 'ipv6');
  }
  return FORBIDDEN.check(address, 'ipv4');
}

/** Resolves the URL's host and refuses it if any of its addresses is forbidden. */
export class DnsWebhookAddressPolicy implements WebhookAddressPolicy {
  constructor(
    /** The local stack calls receivers on this machine; production never does. */
    private readonly allowPrivate: boolean,
    private readonly resolve: (host: string) => Promise<string[]> = async (host) =>
      (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address),
  ) {}

  async refusal(url: string): Promise<string | null> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return 'not a URL';
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return 'only http(s) URLs';
    if (parsed.username || parsed.password) return 'credentials in the URL are not allowed';
    if (this.allowPrivate) return null;
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    let addresses: string[];
    try {
      addresses = isIP(host) ? [host] : await this.resolve(host);
    } catch {
      return `${host} does not resolve`;
    }
    if (addresses.length === 0) return `${host} does not resolve`;
    if (addresses.some(isForbiddenAddress))
      return 'it resolves to a loopback, private or link-local address';
    return null;
  }
}

/** POSTs with a time limit and without following redirects (a redirect could point inside). */
export class FetchWebhookSender implements WebhookSender {
  constructor(private readonly timeoutMs = 5000) {}

  async post(url: string, body: string, headers: Record<string, string>): Promise<number> {
    const response = await fetch(url, {
      method: 'POST',
      body,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    await response.body?.cancel();
    return response.status;
  }
}
