/**
 * The key a request carries in `Authorization: Bearer <key>`, normalised exactly as for the lookup
 * and the rate limit: surrounding whitespace of any kind (JavaScript's `trim`, which includes U+00A0
 * and the other Unicode spaces) is not part of a key.
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(.+)$/is.exec(header);
  const token = m?.[1]?.trim();
  return token ? token : undefined;
}
