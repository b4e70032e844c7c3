/**
 * The base of every error gotel expects to happen: bad input, missing privileges, a kernel that lacks a feature.
 * Its message is one line that names the thing that failed and, in `hint`, what to do about it. The CLI prints
 * these without a stack trace; anything that is not a GotelError is a bug and gets one under OTEL_LOG_LEVEL=debug.
 */
export class GotelError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "GotelError";
  }

  /** The one line a user sees. */
  get oneLine(): string {
    return this.hint ? `${this.message}; ${this.hint}` : this.message;
  }
}
