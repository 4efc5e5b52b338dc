import { Prisma } from "../db/index.ts";

// Money is exact end to end:
// - amounts are integer micro-dollars (`bigint`, 1 USD = 1,000,000 micros);
// - unit prices and quantities are exact decimals (`Prisma.Decimal`, i.e. decimal.js), written in
//   price tables as decimal strings ("0.0085"), never binary floats;
// - rounding happens once per usage line: the line's exact amount (quantity × unit price) is
//   rounded half up (away from zero at exactly half a micro-dollar) to the micro-dollar. Totals
//   are sums of rounded lines, so a call's total always equals the sum of its lines.
// USD numbers in Vapi-compatible JSON (`cost`, `costBreakdown`, `costs[].cost`) are derived from
// micros at the edge and have at most 6 decimals.

export const Decimal = Prisma.Decimal;
export type Decimal = Prisma.Decimal;

export const MICROS_PER_USD = 1_000_000n;

/** A non-negative decimal string such as "0.0085" or "12": the only way prices are written. */
export const DECIMAL_STRING = /^\d{1,12}(\.\d{1,12})?$/;

export function dec(v: string | number | bigint | Decimal): Decimal {
  if (typeof v === "bigint") return new Decimal(v.toString());
  return new Decimal(v);
}

/** Parses a price written as a decimal string; throws naming `what` when malformed. */
export function parsePrice(value: string, what: string): Decimal {
  if (!DECIMAL_STRING.test(value)) {
    throw new Error(
      `${what} must be a non-negative decimal string like "0.0085" (got ${JSON.stringify(value)})`,
    );
  }
  return new Decimal(value);
}

/** Rounds an exact USD amount half up to the micro-dollar. */
export function usdToMicros(usd: Decimal): bigint {
  return BigInt(usd.times(1_000_000).toDecimalPlaces(0, Decimal.ROUND_HALF_UP).toFixed(0));
}

export function microsToDecimal(micros: bigint): Decimal {
  return new Decimal(micros.toString()).div(1_000_000);
}

/** "12.345678": exactly six decimals, the form money takes in our own JSON. */
export function microsToUsdString(micros: bigint): string {
  const neg = micros < 0n;
  const abs = neg ? -micros : micros;
  const whole = abs / MICROS_PER_USD;
  const frac = (abs % MICROS_PER_USD).toString().padStart(6, "0");
  return `${neg ? "-" : ""}${whole}.${frac}`;
}

/** USD as a JSON number (Vapi's `cost` fields): the nearest double to the 6-decimal value. */
export function microsToUsdNumber(micros: bigint): number {
  return Number(microsToUsdString(micros));
}

/** Parses "12.34" (at most 6 decimals) into micros; throws naming `what`. */
export function usdStringToMicros(value: string, what: string): bigint {
  const m = /^(\d{1,12})(?:\.(\d{1,6}))?$/.exec(value);
  if (!m) throw new Error(`${what} must be a USD amount like "250" or "99.50" (at most 6 decimals)`);
  return BigInt(m[1] ?? "0") * MICROS_PER_USD + BigInt((m[2] ?? "").padEnd(6, "0"));
}
