// The boundary between the contract and a parser written the platform's way: the request
// becomes a `FetchRequest`, the parser's result (or what it threw) becomes the contract's, and
// the globals a parser may reach for (`console`, `Date`, `setTimeout`) behave inside the
// sandbox. `telehook build` wraps the parser's module with `exportParser`.
import * as host from 'telehook:parser/host@0.3.0';
import {
  HttpResponse,
  ParseError,
  VoipCallDirection,
  VoipCallDisposition,
  VoipWebhookEvent,
  bytes,
  format,
} from './index.js';

const EVENTS = Object.values(VoipWebhookEvent);
const DIRECTIONS = Object.values(VoipCallDirection);
const DISPOSITIONS = Object.values(VoipCallDisposition);
const U32_MAX = 0xffffffff;

/** A mistake in what the parser returned: reported as the parser's crash, with the field. */
class ResultError extends Error {
  constructor(field, message) {
    super(`the parser's result is invalid at \`${field}\`: ${message}`);
    this.name = 'ResultError';
  }
}

/**
 * The contract's `parse-webhook-request` made of `handler(request: FetchRequest)`.
 *
 * What the handler throws decides the answer:
 * - a `ParseError` is a refusal, with its status or setting;
 * - a `SyntaxError` (`JSON.parse` of a malformed body) is a refusal with status 400, as the
 *   platform answers a parser's failure;
 * - anything else (a `TypeError`, a thrown string, an invalid result) is the parser's crash:
 *   logged at `error` as `uncaught ...` with its stack and reported by the host as a trap, so
 *   the provider retries and the admin reads the message.
 */
export function exportParser(handler) {
  if (typeof handler !== 'function') {
    throw new TypeError(
      'the parser module defines no function `VoipParseWebhookRequest` (or default export)',
    );
  }
  return async function parseWebhookRequest(request) {
    const receivedAtMs = Number(request.receivedAtMs);
    installGlobals(receivedAtMs);
    let result;
    try {
      result = toContractResult(await handler(fetchRequest(request, receivedAtMs)));
    } catch (thrown) {
      throw refusalOrCrash(thrown);
    }
    return result;
  };
}

function refusalOrCrash(thrown) {
  if (ParseError.is(thrown)) {
    const status = thrown.status === undefined ? undefined : Number(thrown.status);
    return { message: String(thrown.message), status, setting: thrown.setting };
  }
  if (thrown instanceof SyntaxError) {
    host.log('warn', `refused: ${thrown.message}`);
    return { message: String(thrown.message), status: 400, setting: undefined };
  }
  host.log('error', `uncaught ${describe(thrown)}`);
  // Not a record the contract can carry: the component traps, and the host reports the
  // logged line as the reason.
  return `uncaught ${describe(thrown)}`;
}

function describe(thrown) {
  if (thrown instanceof Error) {
    const stack = thrown.stack ? `\n${String(thrown.stack).trimEnd()}` : '';
    return `${thrown.name}: ${thrown.message}${stack}`;
  }
  return `exception: ${format([thrown])}`;
}

/** The request as the platform's `FetchRequest` gives it. */
export function fetchRequest(request, receivedAtMs) {
  const body = request.body.length ? new TextDecoder().decode(request.body) : undefined;
  return {
    method: request.method,
    url: request.url,
    path: request.pathWithQuery,
    headers: caseInsensitive(joinRepeated(request.headers)),
    query: firstOfEach(request.query),
    body,
    bodyBytes: request.body,
    headerList: request.headers,
    queryList: request.query,
    routeSuffix: request.routeSuffix,
    receivedAt: new Date(receivedAtMs),
    receivedAtMs,
  };
}

function joinRepeated(pairs) {
  const object = {};
  for (const [name, value] of pairs) {
    object[name] = name in object ? `${object[name]}, ${value}` : value;
  }
  return object;
}

function firstOfEach(pairs) {
  const object = {};
  for (const [name, value] of pairs) {
    if (!(name in object)) {
      object[name] = value;
    }
  }
  return object;
}

/** Header names are lower-case; `headers['X-Signature']` finds `x-signature` all the same. */
function caseInsensitive(object) {
  return new Proxy(object, {
    get: (target, key) => (typeof key === 'string' ? target[key.toLowerCase()] : target[key]),
    has: (target, key) => (typeof key === 'string' ? key.toLowerCase() in target : key in target),
  });
}

/** `console` writes to the invocation log; `Date` is the request's receive time, the only
 * clock a parser has; timers are ready at once on a clock that never waits. */
function installGlobals(receivedAtMs) {
  const levels = { trace: 'trace', debug: 'debug', log: 'info', info: 'info', warn: 'warn', error: 'error' };
  const console = {};
  for (const [method, level] of Object.entries(levels)) {
    console[method] = (...args) => host.log(level, format(args));
  }
  globalThis.console = console;
  globalThis.Date = frozenDate(globalThis.__telehookRealDate ?? (globalThis.__telehookRealDate = Date), receivedAtMs);
  let elapsed = 0;
  globalThis.performance = { now: () => elapsed, timeOrigin: receivedAtMs };
  const cancelled = new Set();
  let nextTimer = 0;
  globalThis.setTimeout = (callback, delay = 0, ...args) => {
    const id = ++nextTimer;
    Promise.resolve().then(() => {
      if (!cancelled.delete(id)) {
        elapsed = Math.max(elapsed, Number(delay) || 0);
        callback(...args);
      }
    });
    return id;
  };
  globalThis.clearTimeout = (id) => {
    cancelled.add(id);
  };
}

function frozenDate(RealDate, receivedAtMs) {
  return class Date extends RealDate {
    constructor(...args) {
      if (args.length === 0) {
        super(receivedAtMs);
      } else {
        super(...args);
      }
    }

    static now() {
      return receivedAtMs;
    }
  };
}

/** The parser's `VoipWebhookParseResult` as the contract's `parse-result`. */
export function toContractResult(result) {
  if (result === undefined || result === null) {
    return {};
  }
  if (typeof result !== 'object') {
    throw new ResultError('', `expected an object, got ${typeof result}`);
  }
  return {
    event: result.event == null ? undefined : telephonyEvent(result.event, 'event'),
    callRecord: result.callRecord == null ? undefined : callRecord(result.callRecord),
    response: result.response == null ? undefined : response(result.response),
    deliveryId: optionalString(result.deliveryId, 'deliveryId'),
  };
}

function telephonyEvent(event, field) {
  return {
    ...callFields(event, field),
    event: member(event.event, EVENTS, `${field}.event`),
  };
}

function callFields(call, field) {
  return {
    callId: optionalString(call.callId, `${field}.callId`),
    direction: call.direction == null ? undefined : member(call.direction, DIRECTIONS, `${field}.direction`),
    disposition: member(call.disposition ?? VoipCallDisposition.Unknown, DISPOSITIONS, `${field}.disposition`),
    srcPhone: optionalString(call.srcPhone, `${field}.srcPhone`),
    srcPhoneExt: optionalString(call.srcPhoneExt, `${field}.srcPhoneExt`),
    dstPhone: optionalString(call.dstPhone, `${field}.dstPhone`),
    dstPhoneExt: optionalString(call.dstPhoneExt, `${field}.dstPhoneExt`),
  };
}

function callRecord(record) {
  const duration = Number(record.duration ?? 0);
  if (!Number.isInteger(duration) || duration < 0 || duration > U32_MAX) {
    throw new ResultError('callRecord.duration', `expected whole seconds, got ${format([record.duration])}`);
  }
  const call = record.call;
  return {
    ...callFields(record, 'callRecord'),
    duration,
    call: typeof call === 'string' ? call : JSON.stringify(call ?? null),
  };
}

function response(reply) {
  if (HttpResponse.is(reply)) {
    return { status: reply._status, headers: reply._headers, body: reply._body };
  }
  const status = Number(reply.status ?? 200);
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new ResultError('response.status', `expected an HTTP status, got ${format([reply.status])}`);
  }
  const headers = Array.isArray(reply.headers)
    ? reply.headers.map(([name, value]) => [String(name), String(value)])
    : Object.entries(reply.headers ?? {}).map(([name, value]) => [name, String(value)]);
  return { status, headers, body: bytes(reply.body ?? reply.content ?? '') };
}

function member(value, allowed, field) {
  if (!allowed.includes(value)) {
    throw new ResultError(field, `${format([value])} is not one of ${allowed.join(', ')}`);
  }
  return value;
}

function optionalString(value, field) {
  if (value === undefined || value === null || value === '') {
    return undefined;
  }
  if (typeof value === 'number' || typeof value === 'bigint') {
    return String(value);
  }
  if (typeof value !== 'string') {
    throw new ResultError(field, `expected a string, got ${format([value])}`);
  }
  return value;
}
