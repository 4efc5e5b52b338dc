// Typed errors with stable codes. Services throw these; one error handler per app maps them to
// the `{statusCode, error, message}` envelope. Anything else is a 500 with a generic message.

export class AppError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(statusCode: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = new.target.name;
    this.statusCode = statusCode;
    this.code = code;
    this.headers = headers;
  }
}

export class ValidationError extends AppError {
  constructor(message: string) {
    super(400, "VALIDATION_ERROR", message);
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = "Missing or invalid API key. Send `Authorization: Bearer <key>`.") {
    super(401, "UNAUTHORIZED", message);
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super(403, "FORBIDDEN", message);
  }
}

export class NotFoundError extends AppError {
  constructor(resource: string, id?: string) {
    super(404, "NOT_FOUND", id ? `${resource} ${id} not found` : `${resource} not found`);
  }
}

export class ConflictError extends AppError {
  constructor(message: string) {
    super(409, "CONFLICT", message);
  }
}

export class PaymentRequiredError extends AppError {
  constructor(message: string) {
    super(402, "PAYMENT_REQUIRED", message);
  }
}

export class RateLimitedError extends AppError {
  constructor(message: string, retryAfterSeconds: number) {
    super(429, "RATE_LIMITED", message, { "retry-after": String(retryAfterSeconds) });
  }
}

export class NotImplementedError extends AppError {
  constructor(message: string) {
    super(501, "NOT_IMPLEMENTED", message);
  }
}

/** A dependency of the platform is unavailable for a moment: retry after `retryAfterSeconds`. */
export class ServiceUnavailableError extends AppError {
  constructor(message: string, retryAfterSeconds: number) {
    super(503, "SERVICE_UNAVAILABLE", message, { "retry-after": String(retryAfterSeconds) });
  }
}

export class UpstreamError extends AppError {
  constructor(message: string, statusCode = 502) {
    super(statusCode, "UPSTREAM_ERROR", message);
  }
}

/** HTTP reason phrases for the `error` field of the envelope. */
export const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

export function statusText(statusCode: number): string {
  return STATUS_TEXT[statusCode] ?? (statusCode >= 500 ? "Internal Server Error" : "Bad Request");
}
