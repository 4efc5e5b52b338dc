// What keeps secrets out of a call's log: the values under keys that name a secret, the call's own
// keys and server secrets wherever they appear (an error message that quotes a header, a URL), and
// the shapes secrets take in text (Authorization schemes, signed-URL and token query parameters,
// passwords in URLs, provider key prefixes). Sizes are bounded too: an entry stays small.

export const REDACTED = "[redacted]";

/** Strings longer than this are cut (an error body, the words of a long turn). */
const MAX_STRING = 1000;
const MAX_ITEMS = 50;
const MAX_DEPTH = 4;
/** Shorter values are not treated as secrets to find in text (they would match ordinary words). */
const MIN_SECRET_LENGTH = 6;

const SECRET_KEYS = new Set([
  "authorization",
  "proxyauthorization",
  "cookie",
  "setcookie",
  "token",
  "signature",
  "xsignature",
  "credential",
  "credentials",
  "privatekey",
  "password",
  "passwd",
]);

/** Whether a field's name says its value is a secret (`apiKey`, `X-Vapi-Secret`, `authToken` …). */
export function isSecretKey(key: string): boolean {
  const k = key.toLowerCase().replace(/[^a-z]/g, "");
  return (
    SECRET_KEYS.has(k) ||
    k.endsWith("secret") ||
    k.endsWith("apikey") ||
    k.endsWith("password") ||
    k.endsWith("authtoken") ||
    k.endsWith("accesstoken") ||
    k.endsWith("refreshtoken") ||
    k.endsWith("accesskey") ||
    k.endsWith("accesskeyid") ||
    k.endsWith("securitytoken")
  );
}

const TEXT_PATTERNS: Array<[RegExp, string]> = [
  // An Authorization header quoted in a message.
  [/\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{4,}/gi, `$1 ${REDACTED}`],
  // Signed URLs and keys in query strings (ours, S3's, providers').
  [
    /([?&](?:signature|sig|token|access_token|api_key|apikey|key|secret|password|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&#\s"'<>]*/gi,
    `$1${REDACTED}`,
  ],
  // user:password@ in a URL.
  [/(\b[a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+:[^\s/@]+@/gi, `$1${REDACTED}@`],
  // Provider keys by their prefixes (OpenAI, Anthropic, Stripe …).
  [/\b(?:sk|rk|pk)[-_][A-Za-z0-9_-]{20,}/g, REDACTED],
];

export class Redactor {
  #secrets: string[] = [];

  /** A value that must never appear in the log (a key in use, a server's secret, a header value). */
  addSecret(value: string | undefined | null): void {
    if (typeof value !== "string" || value.length < MIN_SECRET_LENGTH) return;
    if (this.#secrets.includes(value)) return;
    this.#secrets.push(value);
    // Longest first, so a secret that contains another is replaced whole.
    this.#secrets.sort((a, b) => b.length - a.length);
  }

  /** Every secret-looking value inside `config` (keys, secrets, header values), e.g. an assistant's. */
  addSecretsIn(config: unknown, depth = 0): void {
    if (depth > 8 || config === null || typeof config !== "object") return;
    if (Array.isArray(config)) {
      for (const v of config) this.addSecretsIn(v, depth + 1);
      return;
    }
    for (const [k, v] of Object.entries(config)) {
      if (typeof v === "string") {
        if (isSecretKey(k)) this.addSecret(v);
      } else if (k.toLowerCase() === "headers" && v && typeof v === "object") {
        // Custom headers carry bearer tokens and API keys under any name.
        for (const h of Object.values(v)) if (typeof h === "string") this.addSecret(h);
      } else {
        this.addSecretsIn(v, depth + 1);
      }
    }
  }

  text(s: string): string {
    let out = s.length > MAX_STRING ? `${s.slice(0, MAX_STRING)}…` : s;
    for (const secret of this.#secrets) if (out.includes(secret)) out = out.replaceAll(secret, REDACTED);
    for (const [re, to] of TEXT_PATTERNS) out = out.replace(re, to);
    return out;
  }

  /** A copy of `v` safe to log: secrets replaced, sizes bounded, only JSON values. */
  value(v: unknown, depth = 0): unknown {
    if (typeof v === "string") return this.text(v);
    if (typeof v === "number") return Number.isFinite(v) ? v : String(v);
    if (typeof v === "boolean" || v === null) return v;
    if (v === undefined || typeof v === "function" || typeof v === "symbol") return undefined;
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Date) return v.toISOString();
    if (v instanceof Error) return this.text(v.message);
    if (depth >= MAX_DEPTH) return "[…]";
    if (Array.isArray(v)) return v.slice(0, MAX_ITEMS).map((x) => this.value(x, depth + 1) ?? null);
    const out: Record<string, unknown> = {};
    let n = 0;
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (++n > MAX_ITEMS) break;
      if (isSecretKey(k)) {
        if (x !== undefined && x !== null && x !== "") out[k] = REDACTED;
        continue;
      }
      const safe = this.value(x, depth + 1);
      if (safe !== undefined) out[k] = safe;
    }
    return out;
  }
}
