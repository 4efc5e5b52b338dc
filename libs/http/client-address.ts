import ipaddr from "ipaddr.js";

/**
 * The key a client address is counted under, by the API's per-address rate limits and the media
 * port's per-address socket cap: one spelling per client. IPv4-mapped IPv6 (`::ffff:192.0.2.1`,
 * what a dual-stack listener or proxy may name an IPv4 client) counts as the IPv4 address, and an
 * IPv6 address by its /64: one host usually holds a whole /64 and may pick any address in it
 * (privacy extensions do), so keying on the full address would give it 2^64 budgets. Anything
 * that is not an address is its own key.
 */
export function addressKey(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  const a = ipaddr.process(address);
  if (a.kind() === "ipv4") return a.toString();
  const parts = (a as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${parts.join(":")}::/64`;
}
