// The telehook parser SDK for JavaScript and TypeScript: the platform's names and shapes
// (`VoipWebhookEvent`, `FetchRequest`, `HttpResponse`, ...) over the `telehook:parser` contract.
//
// A parser is the platform's own function, unchanged:
//
//     import { VoipWebhookEvent, VoipCallDirection, VoipCallDisposition } from '@telehook/parser';
//     async function VoipParseWebhookRequest(request) { ... }
//
// and `telehook build parser.ts` makes it a component. The enums' values are the contract's own
// names, so a result crosses the boundary as it was written.
import * as host from 'telehook:parser/host@0.3.0';

// Brands that survive two copies of the SDK in one bundle, where `instanceof` would not.
const PARSE_ERROR = Symbol.for('telehook.ParseError');
const HTTP_RESPONSE = Symbol.for('telehook.HttpResponse');

/** Telephony event types (the contract's `event-type`). */
export const VoipWebhookEvent = Object.freeze({
  NotifyStart: 'notify-start',
  NotifyAnswer: 'notify-answer',
  NotifyEnd: 'notify-end',
});

/** Who called whom (the contract's `direction`). */
export const VoipCallDirection = Object.freeze({
  In: 'in',
  Out: 'out',
  Internal: 'internal',
});

/** How a call ended (the contract's `disposition`); `Unknown` until it has. */
export const VoipCallDisposition = Object.freeze({
  Unknown: 'unknown',
  Answered: 'answered',
  Busy: 'busy',
  Cancel: 'cancel',
  NoAnswer: 'no-answer',
});

/**
 * A refusal: the provider gets `status` (400 unless given; 401/403 for a bad signature) and
 * `{"error": message}`. With `setting`, the refusal is the admin's: the provider gets 503 to
 * retry later and the integration's health names the setting.
 */
export class ParseError extends Error {
  constructor(message, { status, setting } = {}) {
    super(message);
    this.name = 'ParseError';
    this.status = status;
    this.setting = setting;
    this[PARSE_ERROR] = true;
  }

  /** Whether `value` is a `ParseError`, from this copy of the SDK or another one. */
  static is(value) {
    return typeof value === 'object' && value !== null && value[PARSE_ERROR] === true;
  }

  /** A refusal whose cause is the integration's setting `key`, not the request. */
  static misconfigured(key, message) {
    return new ParseError(message ?? `the integration setting \`${key}\` is not set`, {
      setting: key,
    });
  }
}

/** The integration's settings, filled in by an admin. */
export const settings = Object.freeze({
  /** The setting `key`, or `undefined` when the admin has not set it. */
  get(key) {
    return host.getSetting(key);
  },
  /** The setting `key`; throws `ParseError.misconfigured` when it is missing or empty. */
  require(key) {
    const value = host.getSetting(key);
    if (value === undefined || value === '') {
      throw ParseError.misconfigured(key);
    }
    return value;
  },
});

/** Lines for the invocation log, which admins read; the host bounds how many it keeps. */
export const log = Object.freeze({
  trace: (...args) => host.log('trace', format(args)),
  debug: (...args) => host.log('debug', format(args)),
  info: (...args) => host.log('info', format(args)),
  warn: (...args) => host.log('warn', format(args)),
  error: (...args) => host.log('error', format(args)),
});

/** Never show `secret` (a token the request carries) in what the host keeps of the request. */
export function redact(secret) {
  host.redact(String(secret));
}

/** Whether `signature` is a valid Ed25519 signature of `message` under `publicKey`, checked
 * natively by the host (Telnyx signs with it). Each argument is bytes or a string (UTF-8). */
export function verifyEd25519(publicKey, message, signature) {
  return host.verifyEd25519(bytes(publicKey), bytes(message), bytes(signature));
}

/**
 * The reply the provider gets, built the platform's way:
 * `new HttpResponse().status(200).header('content-type', 'text/plain').content('ok')`.
 */
export class HttpResponse {
  constructor() {
    this[HTTP_RESPONSE] = true;
    this._status = 200;
    this._headers = [];
    this._body = new Uint8Array();
  }

  /** Whether `value` is an `HttpResponse`, from this copy of the SDK or another one. */
  static is(value) {
    return typeof value === 'object' && value !== null && value[HTTP_RESPONSE] === true;
  }

  /** Sets the status code. */
  status(code) {
    this._status = code;
    return this;
  }

  /** Adds a header. */
  header(name, value) {
    this._headers.push([String(name), String(value)]);
    return this;
  }

  /** Sets the body: a string (sent as UTF-8) or bytes. */
  content(body) {
    this._body = bytes(body);
    return this;
  }

  /** Sets a JSON body and its content type. */
  json(value) {
    return this.header('content-type', 'application/json').content(JSON.stringify(value));
  }
}

/** A string as UTF-8 bytes; bytes as they are. */
export function bytes(value) {
  if (value instanceof Uint8Array) {
    return value;
  }
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (value instanceof ArrayBuffer) {
    return new Uint8Array(value);
  }
  return new TextEncoder().encode(String(value ?? ''));
}

/** Log arguments as Node's console joins them: strings as they are, the rest as JSON. */
export function format(args) {
  return args.map(formatOne).join(' ');
}

function formatOne(value) {
  if (typeof value === 'string') {
    return value;
  }
  if (value instanceof Error) {
    return value.stack ? `${value}\n${value.stack}` : String(value);
  }
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
    return String(value);
  }
  try {
    return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    return String(value);
  }
}
