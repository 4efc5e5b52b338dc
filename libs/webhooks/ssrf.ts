import { lookup as dnsLookup } from "node:dns/promises";
import type { LookupFunction } from "node:net";
import ipaddr from "ipaddr.js";

// Outgoing requests to customer-supplied URLs (server messages, tool calls) must not reach the
// platform's own network: loopback, private ranges, link-local (cloud metadata at 169.254.169.254),
// CGNAT, unique-local IPv6 (fd00:ec2::254), IPv4-mapped or -compatible IPv6 of any of those… Only
// globally routable unicast addresses pass. The check resolves every address of the host (dns.lookup
// all) and refuses when any one is not public; the request then connects to the address that was
// checked (pinned through the socket's `lookup`), so a DNS answer that changes between check and
// connect (rebinding) cannot redirect it. `allowPrivate` (ALLOW_PRIVATE_WEBHOOK_URLS=true, tests,
// self-hosters on a LAN) skips the address check but still requires http(s).
//
// The same rule runs when a URL is saved (`checkUrlWhenSaved`), so a customer learns at once; there a
// host that does not resolve (yet) is accepted, since the check at send time stays the guard.
//
// Literal addresses in any notation (`http://2130706433/`, `0x7f.1`, `0177.0.0.1`, `[::ffff:127.0.0.1]`)
// reach this code already normalised by the WHATWG URL parser, the same one the request is made with.

export type UnsafeUrlReason =
  | "invalid-url"
  | "unsupported-protocol"
  | "credentials"
  | "unresolvable"
  | "private-address";

export class UnsafeUrlError extends Error {
  constructor(
    readonly reason: UnsafeUrlReason,
    readonly url: string,
    message: string,
    /** The offending address, for `private-address` (absent for a private host name). */
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

/** `dns.lookup(host, {all: true})`'s answer; injectable so tests can resolve names as they like. */
export type HostLookup = (host: string) => Promise<{ address: string; family: number }[]>;

export interface SsrfOptions {
  allowPrivate: boolean;
  lookup?: HostLookup;
  /** A lookup that takes longer counts as unresolvable (default: no limit of its own). */
  lookupTimeoutMs?: number;
}

const PRIVATE_HINT = "set ALLOW_PRIVATE_WEBHOOK_URLS=true to allow private and loopback targets";

/** The ipaddr.js range name of an address ("unicast" is the only public one), IPv4-mapped IPv6 unwrapped. */
export function addressRange(ip: string): string {
  let addr = ipaddr.parse(ip);
  if (addr.kind() === "ipv6") {
    const v6 = addr as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) addr = v6.toIPv4Address();
  }
  const range = addr.range();
  // ::/96 (deprecated IPv4-compatible, `[::127.0.0.1]`): ipaddr.js calls it unicast, it is not.
  if (
    range === "unicast" &&
    addr.kind() === "ipv6" &&
    (addr as ipaddr.IPv6).parts.slice(0, 6).every((p) => p === 0)
  ) {
    return "ipv4Compatible";
  }
  return range;
}

/** True when the literal address is globally routable unicast. Anything unparsable is not public. */
export function isPublicAddress(ip: string): boolean {
  if (!ipaddr.isValid(ip)) return false;
  return addressRange(ip) === "unicast";
}

// Names that can only mean this machine, a cloud metadata service or a private network: refused
// without asking DNS (which may not answer them where the check runs, but does where the request
// would go). `.localhost` (RFC 6761), `.local` (mDNS), `.internal` (ICANN, private use) and
// `.home.arpa` (RFC 8375) are never public.
const PRIVATE_NAMES = new Set(["localhost", "metadata", "metadata.goog", "instance-data"]);
const PRIVATE_SUFFIXES = [".localhost", ".local", ".internal", ".home.arpa"];

/** True for a host name that names a non-public target by definition (`localhost`, `metadata.google.internal`…). */
export function isPrivateHostname(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  return PRIVATE_NAMES.has(host) || PRIVATE_SUFFIXES.some((s) => host.endsWith(s));
}

function stripBrackets(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/**
 * Parses a URL the platform would send to: http or https, and no user name or password (they would
 * travel in logs, queued jobs and error messages; credentials belong in `server.headers`).
 */
export function parseWebhookUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UnsafeUrlError("invalid-url", url, "is not a valid URL");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UnsafeUrlError(
      "unsupported-protocol",
      url,
      `must use http or https, not ${parsed.protocol.replace(/:$/, "")}`,
    );
  }
  if (parsed.username !== "" || parsed.password !== "") {
    throw new UnsafeUrlError(
      "credentials",
      url,
      "must not contain a user name or password; send credentials in server.headers (e.g. Authorization)",
    );
  }
  return parsed;
}

async function resolve(host: string, url: string, options: SsrfOptions) {
  const lookup = options.lookup ?? ((h: string) => dnsLookup(h, { all: true, verbatim: true }));
  let timer: NodeJS.Timeout | undefined;
  try {
    const answer = lookup(host);
    const addresses = options.lookupTimeoutMs
      ? await Promise.race([
          answer,
          new Promise<never>((_resolve, reject) => {
            timer = setTimeout(
              () => reject(Object.assign(new Error("DNS timeout"), { code: "ETIMEOUT" })),
              options.lookupTimeoutMs,
            );
          }),
        ])
      : await answer;
    if (addresses.length === 0) throw Object.assign(new Error("no address"), { code: "ENODATA" });
    return addresses;
  } catch (err) {
    const code = (err as { code?: string }).code ?? "error";
    throw new UnsafeUrlError("unresolvable", url, `has a host, ${host}, that cannot be resolved (${code})`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Throws UnsafeUrlError unless `url` is http(s) and (without `allowPrivate`) every address its host
 * resolves to is public. Returns the address the request must connect to.
 */
export async function assertPublicUrl(url: string, options: SsrfOptions): Promise<ResolvedTarget> {
  const parsed = parseWebhookUrl(url);
  if (options.allowPrivate) return { url: parsed };

  const host = stripBrackets(parsed.hostname);
  if (!ipaddr.isValid(host) && isPrivateHostname(host)) {
    throw new UnsafeUrlError(
      "private-address",
      url,
      `has a host, ${host}, that names a private or local target, which is not a public address; ${PRIVATE_HINT}`,
    );
  }
  const addresses = ipaddr.isValid(host)
    ? [{ address: host, family: host.includes(":") ? 6 : 4 }]
    : await resolve(host, url, options);
  for (const a of addresses) {
    if (!isPublicAddress(a.address)) {
      const range = ipaddr.isValid(a.address) ? addressRange(a.address) : "invalid";
      const what = a.address === host ? `is ${host}` : `has a host, ${host}, that resolves to ${a.address}`;
      throw new UnsafeUrlError(
        "private-address",
        url,
        `${what} (${range}), which is not a public address; ${PRIVATE_HINT}`,
        a.address,
      );
    }
  }
  const first = addresses[0] as { address: string; family: number };
  return { url: parsed, address: first.address, family: first.family === 6 ? 6 : 4 };
}

/** How long a save waits for DNS before it accepts a host it could not resolve. */
export const SAVE_LOOKUP_TIMEOUT_MS = 2000;

/**
 * The send-time rule applied when a URL is saved: throws UnsafeUrlError for a URL that could never be
 * sent to. A host that does not resolve now is accepted (its DNS may not exist yet); it is checked
 * again, and pinned, whenever something is sent.
 */
export async function checkUrlWhenSaved(url: string, options: SsrfOptions): Promise<void> {
  try {
    await assertPublicUrl(url, { lookupTimeoutMs: SAVE_LOOKUP_TIMEOUT_MS, ...options });
  } catch (err) {
    if (err instanceof UnsafeUrlError && err.reason === "unresolvable") return;
    throw err;
  }
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
