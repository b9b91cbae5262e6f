// Types of the telehook parser SDK: the platform's names (`FetchRequest`,
// `VoipWebhookParseResult`, ...) over the `telehook:parser@0.3.0` contract.

/** Telephony event types. */
export declare const VoipWebhookEvent: {
  /** The call started: an incoming call rings, or an operator dials out. */
  readonly NotifyStart: 'notify-start';
  /** The call was answered. */
  readonly NotifyAnswer: 'notify-answer';
  /** The call finished, answered or not. */
  readonly NotifyEnd: 'notify-end';
};
export type VoipWebhookEvent = (typeof VoipWebhookEvent)[keyof typeof VoipWebhookEvent];

/** Who called whom; it decides what the phone fields mean. */
export declare const VoipCallDirection: {
  /** A client calls an operator. */
  readonly In: 'in';
  /** An operator calls a client. */
  readonly Out: 'out';
  /** An operator calls another operator. */
  readonly Internal: 'internal';
};
export type VoipCallDirection = (typeof VoipCallDirection)[keyof typeof VoipCallDirection];

/** How the call ended; `Unknown` until it has. */
export declare const VoipCallDisposition: {
  readonly Unknown: 'unknown';
  readonly Answered: 'answered';
  readonly Busy: 'busy';
  /** Dropped before it was answered: the caller gave up, or another member answered. */
  readonly Cancel: 'cancel';
  /** Not answered, or the called party was unreachable. */
  readonly NoAnswer: 'no-answer';
};
export type VoipCallDisposition = (typeof VoipCallDisposition)[keyof typeof VoipCallDisposition];

/** The provider's request, as the platform's `FetchRequest` gives it. */
export interface FetchRequest {
  /** `POST`, `GET`, ... */
  method: string;
  /** The URL the provider called: scheme, authority, path and query (sign over this). */
  url: string;
  /** The path and query as requested. */
  path: string;
  /** The headers by lower-case name (any case finds them); repeated ones joined by `, `. */
  headers: Record<string, string>;
  /** The query parameters; the first value of a repeated one. */
  query: Record<string, string>;
  /** The body as UTF-8 text; `undefined` when the request has none. */
  body?: string;
  /** The body's bytes, for a signature over them or a binary body. */
  bodyBytes: Uint8Array;
  /** The headers in the order sent, repeats kept. */
  headerList: Array<[string, string]>;
  /** The query parameters in order, repeats kept. */
  queryList: Array<[string, string]>;
  /** What follows the token in the webhook URL's path, without its leading `/`. */
  routeSuffix: string;
  /** When the host received the request: also what `new Date()` and `Date.now()` return. */
  receivedAt: Date;
  /** The same, in milliseconds since the Unix epoch. */
  receivedAtMs: number;
}

/** The fields an event and a call record share. */
export interface VoipCall {
  /** The provider's id of the whole call: ties its events together. */
  callId?: string;
  /** May be left out, with the phones, when `callId` names a call already seen. */
  direction?: VoipCallDirection;
  disposition: VoipCallDisposition;
  /** For `In` the client's number; for `Out` and `Internal` the operator's. */
  srcPhone?: string;
  /** For `In` only: the extension of the employee receiving the call. */
  srcPhoneExt?: string;
  /** For `In` and `Internal` the operator's number; for `Out` the client's. */
  dstPhone?: string;
  /** For `Out` only: the extension of the employee placing the call. */
  dstPhoneExt?: string;
}

/** The platform's normalised telephony event (`VoipWebhookRequest`). */
export interface VoipWebhookRequest extends VoipCall {
  event: VoipWebhookEvent;
}

/** A finished call with its recording (`VoipCallRecord`). */
export interface VoipCallRecord extends VoipCall {
  /** The conversation's length in whole seconds; 0 for a call not answered. */
  duration: number;
  /** Opaque data handed back when the platform asks for a recording link: a string, or a
   * value stored as its JSON. */
  call: unknown;
}

/** A reply given as a plain object instead of an `HttpResponse`. */
export interface HttpResponseInit {
  status?: number;
  headers?: Record<string, string> | Array<[string, string]>;
  body?: string | Uint8Array;
}

/** What a parser made of a request; every part optional. */
export interface VoipWebhookParseResult {
  event?: VoipWebhookRequest;
  callRecord?: VoipCallRecord;
  /** Sent to the provider verbatim; without it the host answers 200 with an empty body. */
  response?: HttpResponse | HttpResponseInit;
  /** The provider's id of this delivery, the same on its retries: stored once. */
  deliveryId?: string;
}

/** A refusal. The provider gets `status` (400 when absent) and `{"error": message}`; with
 * `setting`, 503 (retry later) while the integration's health names the setting. */
export declare class ParseError extends Error {
  constructor(message: string, options?: { status?: number; setting?: string });
  readonly status?: number;
  readonly setting?: string;
  /** A refusal caused by the integration's setting `key`, not by the request. */
  static misconfigured(key: string, message?: string): ParseError;
  /** Whether `value` is a `ParseError`, from any copy of the SDK. */
  static is(value: unknown): value is ParseError;
}

/** The reply the provider gets, built the platform's way. */
export declare class HttpResponse {
  status(code: number): this;
  header(name: string, value: string): this;
  /** A string (sent as UTF-8) or bytes. */
  content(body: string | Uint8Array): this;
  /** A JSON body with its content type. */
  json(value: unknown): this;
  static is(value: unknown): value is HttpResponse;
}

/** The integration's settings, filled in by an admin. */
export declare const settings: {
  get(key: string): string | undefined;
  /** Throws `ParseError.misconfigured(key)` when the setting is missing or empty. */
  require(key: string): string;
};

/** The invocation log, which admins read. `console.*` writes here too. */
export declare const log: {
  trace(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
};

/** Never show `secret`, a value the request carries, in what the host keeps of it. */
export declare function redact(secret: string): void;

/** An Ed25519 signature check done natively by the host. Strings are taken as UTF-8. */
export declare function verifyEd25519(
  publicKey: Uint8Array | string,
  message: Uint8Array | string,
  signature: Uint8Array | string,
): boolean;

/** A string as UTF-8 bytes; bytes as they are. */
export declare function bytes(value: string | ArrayBufferView | ArrayBuffer): Uint8Array;

/** Values joined as a log line: strings as they are, the rest as JSON. */
export declare function format(values: unknown[]): string;
