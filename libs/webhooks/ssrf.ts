import { lookup } from "node:dns/promises";
import type { LookupFunction } from "node:net";
import ipaddr from "ipaddr.js";

// Outgoing requests to customer-supplied URLs (server messages, tool calls) must not reach the
// platform's own network: loopback, private ranges, link-local (cloud metadata at 169.254.169.254),
// CGNAT, unique-local IPv6, IPv4-mapped IPv6 of any of those… Only globally routable unicast
// addresses pass. The check resolves every address of the host (dns.lookup all) and refuses when
// any one is not public; the request then connects to the address that was checked (pinned through
// the socket's `lookup`), so a DNS answer that changes between check and connect (rebinding)
// cannot redirect it. `allowPrivate` (ALLOW_PRIVATE_WEBHOOK_URLS=true, tests, self-hosters on a LAN)
// skips the address check but still requires http(s).

export type UnsafeUrlReason = "invalid-url" | "unsupported-protocol" | "unresolvable" | "private-address";

export class UnsafeUrlError extends Error {
  constructor(
    readonly reason: UnsafeUrlReason,
    readonly url: string,
    message: string,
    /** The offending address, for `private-address`. */
    readonly address?: string,
  ) {
    super(message);
    this.name = "UnsafeUrlError";
  }
}

export interface ResolvedTarget {
  url: URL;
  /** The checked address to connect to; absent when `allowPrivate` skipped resolution. */
  address?: string;
  family?: 4 | 6;
}

export interface SsrfOptions {
  allowPrivate: boolean;
}

/** The ipaddr.js range name of an address ("unicast" is the only public one), IPv4-mapped IPv6 unwrapped. */
export function addressRange(ip: string): string {
  let addr = ipaddr.parse(ip);
  if (addr.kind() === "ipv6") {
    const v6 = addr as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) addr = v6.toIPv4Address();
  }
  return addr.range();
}

/** True when the literal address is globally routable unicast. Anything unparsable is not public. */
export function isPublicAddress(ip: string): boolean {
  if (!ipaddr.isValid(ip)) return false;
  return addressRange(ip) === "unicast";
}

function stripBrackets(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/**
 * Throws UnsafeUrlError unless `url` is http(s) and (without `allowPrivate`) every address its host
 * resolves to is public. Returns the address the request must connect to.
 */
export async function assertPublicUrl(url: string, options: SsrfOptions): Promise<ResolvedTarget> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UnsafeUrlError("invalid-url", url, `"${url}" is not a valid URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UnsafeUrlError(
      "unsupported-protocol",
      url,
      `server URL must use http or https, not ${parsed.protocol.replace(/:$/, "")}`,
    );
  }
  if (options.allowPrivate) return { url: parsed };

  const host = stripBrackets(parsed.hostname);
  let addresses: { address: string; family: number }[];
  if (ipaddr.isValid(host)) {
    addresses = [{ address: host, family: host.includes(":") ? 6 : 4 }];
  } else {
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch (err) {
      const code = (err as { code?: string }).code ?? "error";
      throw new UnsafeUrlError("unresolvable", url, `cannot resolve host ${host} (${code})`);
    }
    if (addresses.length === 0) throw new UnsafeUrlError("unresolvable", url, `host ${host} has no address`);
  }
  for (const a of addresses) {
    if (!isPublicAddress(a.address)) {
      const range = ipaddr.isValid(a.address) ? addressRange(a.address) : "invalid";
      throw new UnsafeUrlError(
        "private-address",
        url,
        `server URL host ${host} resolves to ${a.address} (${range}), which is not a public address; ` +
          "set ALLOW_PRIVATE_WEBHOOK_URLS=true to allow private and loopback targets",
        a.address,
      );
    }
  }
  const first = addresses[0] as { address: string; family: number };
  return { url: parsed, address: first.address, family: first.family === 6 ? 6 : 4 };
}

/**
 * A socket `lookup` that answers every query with the pinned address (handles `all: true`, which
 * Node's happy-eyeballs connect uses). Undefined when nothing is pinned.
 */
export function pinnedLookup(target: ResolvedTarget): LookupFunction | undefined {
  const { address, family } = target;
  if (!address || !family) return undefined;
  return (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
}
