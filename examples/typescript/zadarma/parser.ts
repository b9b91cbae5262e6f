// Zadarma's PBX call notifications, and Novofon classic's (its twin: the same `NOTIFY_*`
// events, fields and signature), in TypeScript: the same parser as `catalog/zadarma` (its
// README gives every decision), written the platform's way and passing the same samples.
//
// The provider calls the webhook URL in two ways:
// - a `GET ?zd_echo=VALUE` when the URL is saved in its console, answered with exactly `VALUE`;
// - a `POST` per call event, form-urlencoded (a third-party handler reports multipart bodies
//   too, which are read as well), signed in the `Signature` header.
//
// | notification | event | direction | src → dst | ext | record |
// |---|---|---|---|---|---|
// | `NOTIFY_START` | start | in | `caller_id` → `called_did` | – | – |
// | `NOTIFY_INTERNAL` | start | in | `caller_id` → `internal` | src = `internal` | – |
// | `NOTIFY_ANSWER` | answer | of its call (`pbx_call_id` only) | – | – | – |
// | `NOTIFY_END` | end | in | `caller_id` → `internal` or `called_did` | src = `internal` | yes |
// | `NOTIFY_OUT_START` | start | out (internal to a 3-digit extension) | `internal` → `destination` | dst = `internal` | – |
// | `NOTIFY_OUT_END` | end | as `NOTIFY_OUT_START` | as `NOTIFY_OUT_START` | as above | yes |
//
// `pbx_call_id` is every event's call id. `NOTIFY_RECORD`, `NOTIFY_IVR` and the other hooks
// are verified and acknowledged without an event.
//
// The Rust SDK's helpers the Rust parser leans on (its form and header readers,
// `phone::number` and the host's phone rule, `crypto::constant_time_eq`, the `{:?}` quoting of
// its messages) are reproduced below as small functions, so that this parser answers every
// request as the Rust one does.
import {
  HttpResponse,
  ParseError,
  VoipCallDirection,
  VoipCallDisposition,
  VoipWebhookEvent,
  log,
  settings,
  type FetchRequest,
  type VoipWebhookParseResult,
  type VoipWebhookRequest,
} from '@telehook/parser';

/** The setting holding the API secret from the personal account (Zadarma's or Novofon's). */
const API_SECRET = 'api_secret';
/** Zadarma's PBX extensions are three-digit numbers ("внутренний номер АТС (трехзначный
 * номер)"): an outgoing call to one is an internal call. */
const EXTENSION_DIGITS = 3;
/** The largest duration the contract carries (a `u32` of seconds). */
const U32_MAX = 0xffffffff;

/**
 * The fields whose concatenation each notification signs: `getSignatureString()` of each
 * `lib/Webhook/Notify*.php` in `zadarma/user-api-v1` (unchanged in `novofon/user-api-v1`); the
 * other hooks (SMS, speech recognition, number lookup, call tracking) sign their `result`. A
 * notification not listed is documented by neither.
 */
const SIGNED_FIELDS = new Map<string, readonly string[]>([
  ...['NOTIFY_START', 'NOTIFY_INTERNAL', 'NOTIFY_END', 'NOTIFY_IVR'].map(
    (event) => [event, ['caller_id', 'called_did', 'call_start']] as const,
  ),
  ['NOTIFY_ANSWER', ['caller_id', 'destination', 'call_start']],
  ['NOTIFY_OUT_START', ['internal', 'destination', 'call_start']],
  ['NOTIFY_OUT_END', ['internal', 'destination', 'call_start']],
  ['NOTIFY_RECORD', ['pbx_call_id', 'call_id_with_rec']],
  ...['SMS', 'SPEECH_RECOGNITION', 'NUMBER_LOOKUP', 'CALL_TRACKING'].map((event) => [event, ['result']] as const),
]);

async function VoipParseWebhookRequest(request: FetchRequest): Promise<VoipWebhookParseResult> {
  const echo = request.queryList.find(([name]) => name === 'zd_echo')?.[1];
  if (echo !== undefined) {
    return {
      response: new HttpResponse().status(200).header('content-type', 'text/plain; charset=utf-8').content(echo),
    };
  }
  const fields = fieldsOf(request);
  const event = fields.get('event');
  if (event === undefined) {
    throw new ParseError(
      'the request has no `event` field: not a Zadarma or Novofon classic NOTIFY_* notification (Novofon 2.0 sends another format)',
    );
  }
  const signed = SIGNED_FIELDS.get(event);
  if (signed === undefined) {
    log.info(`ignoring \`${event}\`: not a notification this parser knows, nothing verified`);
    return {};
  }
  await verify(request, fields, event, signed);
  return translate(event, fields);
}

/** Refuses a notification whose `Signature` header is missing or is not the one its signed
 * fields give under the API secret (compared in constant time). */
async function verify(request: FetchRequest, fields: Fields, event: string, signed: readonly string[]): Promise<void> {
  const secret = settings.require(API_SECRET);
  const signature = trim(header(request, 'signature') ?? '');
  if (signature === '') {
    throw new ParseError(
      `\`${event}\` has no \`Signature\` header: the provider signs notifications only once the account has API keys (generate them and set \`${API_SECRET}\` to the secret)`,
      { status: 401 },
    );
  }
  if (!constantTimeEqual(await signatureOf(secret, fields, signed), signature)) {
    throw new ParseError(
      `the \`Signature\` header of \`${event}\` is not the HMAC of its fields ${signed.join(' + ')} under \`${API_SECRET}\`: forged, altered, or signed with another account's secret`,
      { status: 401 },
    );
  }
}

/** `base64_encode(hash_hmac('sha1', $signed, $secret))`, as the official PHP SDK's
 * `Client::encodeSignature` computes it: PHP's `hash_hmac` returns the lowercase hex digest, so
 * this is base64 of 40 hex characters, not of the 20 raw bytes. A field the notification
 * lacks counts as empty, as in PHP's string concatenation. */
async function signatureOf(secret: string, fields: Fields, signed: readonly string[]): Promise<string> {
  const message = signed.map((name) => fields.get(name) ?? '').join('');
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-1' }, false, [
    'sign',
  ]);
  const digest = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(message)));
  const hex = Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return btoa(hex);
}

/** A verified notification as the platform's event and, at the end, the call record. */
function translate(notification: string, fields: Fields): VoipWebhookParseResult {
  let event: VoipWebhookRequest;
  switch (notification) {
    case 'NOTIFY_START':
      event = incoming(VoipWebhookEvent.NotifyStart, fields, 'called_did');
      break;
    case 'NOTIFY_INTERNAL':
      event = incoming(VoipWebhookEvent.NotifyStart, fields, 'internal');
      break;
    case 'NOTIFY_END':
      event = incoming(VoipWebhookEvent.NotifyEnd, fields, 'called_did');
      break;
    case 'NOTIFY_OUT_START':
      event = outgoing(VoipWebhookEvent.NotifyStart, fields);
      break;
    case 'NOTIFY_OUT_END':
      event = outgoing(VoipWebhookEvent.NotifyEnd, fields);
      break;
    case 'NOTIFY_ANSWER':
      // Its direction is not documented (outgoing calls may send it too) and the answering
      // extension comes again with the end: name only the call.
      event = { event: VoipWebhookEvent.NotifyAnswer, disposition: VoipCallDisposition.Unknown };
      break;
    case 'NOTIFY_RECORD':
      log.info("`NOTIFY_RECORD` verified and acknowledged: its recording id came with the call's end already");
      return {};
    default:
      log.info(`\`${notification}\` verified and acknowledged: the platform has no event for it`);
      return {};
  }
  event.callId = require(fields, 'pbx_call_id');
  return event.event === VoipWebhookEvent.NotifyEnd ? finished(event, fields) : { event };
}

/** An incoming call's event: the client calls `dstField` (the company number dialled), or the
 * extension in `internal` once one rang or answered, which is also `srcPhoneExt`. */
function incoming(kind: VoipWebhookEvent, fields: Fields, dstField: string): VoipWebhookRequest {
  const client = phone(fields.get('caller_id') ?? '', 'caller_id');
  const extension = fields.nonEmpty('internal');
  const operator =
    extension === undefined ? phone(require(fields, dstField), dstField) : phone(extension, 'internal');
  return {
    event: kind,
    direction: VoipCallDirection.In,
    disposition: VoipCallDisposition.Unknown,
    srcPhone: client,
    dstPhone: operator,
    srcPhoneExt: extension,
  };
}

/** An outgoing call's event: the operator's extension (`internal`) calls `destination`, a
 * client, or another extension (then the call is internal and names no extension field). */
function outgoing(kind: VoipWebhookEvent, fields: Fields): VoipWebhookRequest {
  const extension = fields.nonEmpty('internal');
  // Without an extension the line the call goes out on, unless Zadarma sent its `0`.
  const caller = fields.nonEmpty('caller_id');
  const raw = extension ?? (caller === '0' ? undefined : caller);
  if (raw === undefined) {
    throw new ParseError('an outgoing call with neither `internal` nor `caller_id`');
  }
  const operator = phone(raw, 'internal');
  const destination = phone(require(fields, 'destination'), 'destination');
  const disposition = VoipCallDisposition.Unknown;
  if (isExtension(destination)) {
    return { event: kind, direction: VoipCallDirection.Internal, disposition, srcPhone: operator, dstPhone: destination };
  }
  return {
    event: kind,
    direction: VoipCallDirection.Out,
    disposition,
    srcPhone: operator,
    dstPhone: destination,
    dstPhoneExt: extension,
  };
}

/** The end of a call: its disposition, and the call record of every ended call, recorded or
 * not, so that missed calls reach the activity stream too. The record's duration is the
 * conversation (0 unless answered), its `call` the recording's id when there is one, else
 * `pbx_call_id` (Zadarma's `pbx/record/request` accepts both). */
function finished(event: VoipWebhookRequest, fields: Fields): VoipWebhookParseResult {
  const disposition = endDisposition(require(fields, 'disposition'));
  const end = { ...event, disposition };
  const duration = disposition === VoipCallDisposition.Answered ? seconds(require(fields, 'duration')) : 0;
  const recording = fields.get('is_recorded') === '1' ? fields.nonEmpty('call_id_with_rec') : undefined;
  const call = recording ?? require(fields, 'pbx_call_id');
  const { event: _kind, ...parties } = end;
  return { event: end, callRecord: { ...parties, duration, call } };
}

/**
 * How the call ended, from `disposition` (values from the SDKs' `NotifyEnd.php`, glosses from
 * the statistics API):
 *
 * | `disposition` | provider's gloss | platform |
 * |---|---|---|
 * | `answered` | conversation | answered |
 * | `busy` | busy | busy |
 * | `cancel` | cancelled | cancel |
 * | `no answer`, `failed`, `call failed` | no answer, failed | no-answer |
 * | `no money`, `unallocated number` | no funds, the number does not exist | no-answer |
 * | `no limit`, `no day limit`, `line limit`, `no money, no limit` | limits exceeded | no-answer |
 *
 * Every reason the call never connected is "not answered or unreachable" to the platform; an
 * undocumented value is too, with a warning in the log.
 */
function endDisposition(zadarma: string): VoipCallDisposition {
  switch (zadarma) {
    case 'answered':
      return VoipCallDisposition.Answered;
    case 'busy':
      return VoipCallDisposition.Busy;
    case 'cancel':
      return VoipCallDisposition.Cancel;
    case 'no answer':
    case 'failed':
    case 'call failed':
    case 'no money':
    case 'unallocated number':
    case 'no limit':
    case 'no day limit':
    case 'line limit':
    case 'no money, no limit':
      return VoipCallDisposition.NoAnswer;
    default:
      log.warn(`undocumented disposition ${quoted(zadarma)}: reported as not answered`);
      return VoipCallDisposition.NoAnswer;
  }
}

/** A number as the host wants it (a SIP URI's user part, `anonymous` for a withheld caller),
 * refused, naming the field, when the host would refuse it. */
function phone(raw: string, field: string): string {
  const number = phoneNumber(raw);
  const broken = phoneRule(number);
  if (broken !== undefined) {
    throw new ParseError(`\`${field}\` is not a usable number: ${broken}`);
  }
  return number;
}

/** Whether a number is one of the PBX's own extensions. */
function isExtension(number: string): boolean {
  return number.length === EXTENSION_DIGITS && /^[0-9]+$/.test(number);
}

/** Whole seconds as Rust's `u32` parse reads them (digits, an optional `+`, nothing else). */
function seconds(text: string): number {
  const value = trim(text);
  const number = Number(value);
  if (!/^\+?[0-9]+$/.test(value) || number > U32_MAX) {
    throw new ParseError(`\`duration\` is not a number of seconds: ${quoted(text)}`);
  }
  return number;
}

/** A field the notification must carry with a value: an empty or blank one is refused too. */
function require(fields: Fields, name: string): string {
  const value = fields.nonEmpty(name);
  if (value === undefined) {
    throw new ParseError(`the field \`${name}\` is missing or empty`);
  }
  return value;
}

/** A notification's fields: the body's (form-urlencoded, or multipart as a third-party handler
 * reports Zadarma sometimes posts), then the query's. */
function fieldsOf(request: FetchRequest): Fields {
  const multipart = asciiLower(trim(header(request, 'content-type') ?? '')).startsWith('multipart/');
  const body = bodyText(request);
  const pairs: Array<[string, string]> = multipart ? multipartFields(body) : [...new URLSearchParams(body)];
  return new Fields([...pairs, ...request.queryList]);
}

/** Decoded fields in the order sent; the first of a repeated name wins. */
class Fields {
  constructor(private readonly pairs: ReadonlyArray<readonly [string, string]>) {}

  get(name: string): string | undefined {
    return this.pairs.find(([key]) => key === name)?.[1];
  }

  /** The value, absent when the provider sent it empty or blank. */
  nonEmpty(name: string): string | undefined {
    const value = this.get(name);
    return value === undefined || trim(value) === '' ? undefined : value;
  }
}

/** The fields of a `multipart/form-data` body (RFC 7578). The delimiter is taken from the
 * body's first line rather than the header: the third-party handler that reports such bodies
 * found the two disagreeing. */
function multipartFields(body: string): Array<[string, string]> {
  const firstLine = body.split('\r\n')[0];
  if (!firstLine.startsWith('--')) {
    return [];
  }
  const fields: Array<[string, string]> = [];
  for (const part of body.slice(firstLine.length).split(`\r\n${firstLine}`)) {
    if (!part.startsWith('\r\n')) {
      continue; // the closing `--` after the last delimiter
    }
    const split = part.indexOf('\r\n\r\n', 2);
    const name = split === -1 ? undefined : partName(part.slice(2, split));
    if (name !== undefined) {
      fields.push([name, part.slice(split + 4)]);
    }
  }
  return fields;
}

/** The `name` of a part's `Content-Disposition: form-data; name="..."`. */
function partName(headers: string): string | undefined {
  const disposition = headers
    .split('\n')
    .map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line))
    .find((line) => asciiLower(line).startsWith('content-disposition:'));
  const name = disposition
    ?.split(';')
    .map(trim)
    .find((param) => param.startsWith('name='));
  return name?.slice('name='.length).replace(/^"+|"+$/g, '');
}

// ---- What the Rust SDK gives the Rust parser ----

/** The first value of a header, whatever the case of its name (`request.headers` would join
 * a repeated one). */
function header(request: FetchRequest, name: string): string | undefined {
  const lower = asciiLower(name);
  return request.headerList.find(([key]) => asciiLower(key) === lower)?.[1];
}

/** The body as text. A leading byte-order mark is kept, as the Rust SDK's decoders keep it;
 * `request.body` drops it. */
function bodyText(request: FetchRequest): string {
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(request.bodyBytes);
}

/** Markers providers use for a withheld caller (compared ignoring ASCII case), and Twilio's
 * `+266696687`, "ANONYMOUS" on a keypad. */
const ANONYMOUS_MARKERS = ['anonymous', 'restricted', 'private', 'unavailable', 'unknown', 'withheld', '+266696687', '266696687'];

/** The number a field names (the Rust SDK's `phone::number`): the user part of a SIP or tel
 * URI, display name and brackets taken off, or `anonymous` for a withheld or missing caller. */
function phoneNumber(raw: string): string {
  const user = sipUser(raw);
  const withheld = user === '' || ANONYMOUS_MARKERS.includes(asciiLower(user));
  return withheld ? 'anonymous' : user;
}

/** `sip:101@pbx;user=phone` is `101`, `tel:+7916;ext=1` is `+7916`; other text, trimmed. */
function sipUser(raw: string): string {
  let text = trim(raw);
  const open = text.indexOf('<');
  const close = text.lastIndexOf('>');
  if (open !== -1 && open < close) {
    text = text.slice(open + 1, close);
  }
  // The Rust helper looks for the scheme in the text's first five bytes, and finds none when
  // there are fewer or the fifth ends inside a character (`sip:` alone stays `sip:`).
  const bytes = new TextEncoder().encode(text);
  const boundary = bytes.length === 5 || (bytes.length > 5 && (bytes[5] & 0xc0) !== 0x80);
  const head = boundary ? asciiLower(new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes.subarray(0, 5))) : '';
  const scheme = ['sips:', 'sip:', 'tel:'].find((prefix) => head.startsWith(prefix));
  if (scheme === undefined) {
    return text;
  }
  return trim(text.slice(scheme.length).split('@')[0].split(';')[0]);
}

/** The longest phone number the host takes, in bytes. */
const MAX_PHONE_LEN = 64;
/** What a phone may hold besides ASCII letters and digits. */
const PHONE_CHARS = '+*#@.:_-()/ ';

/** The host's rule for a `srcPhone` or `dstPhone`, in its own words; `undefined` when the
 * number passes. */
function phoneRule(phone: string): string | undefined {
  const length = new TextEncoder().encode(phone).length;
  if (length === 0) {
    return 'must not be empty';
  }
  if (length > MAX_PHONE_LEN) {
    return `${length} bytes is longer than the limit of ${MAX_PHONE_LEN}`;
  }
  const bad = [...phone].find((char) => !/^[A-Za-z0-9]$/.test(char) && !PHONE_CHARS.includes(char));
  if (bad !== undefined) {
    return `contains ${quoted(bad, "'")}; allowed are ASCII letters, digits and ${quoted(PHONE_CHARS)}`;
  }
  if (phone.startsWith(' ') || phone.endsWith(' ')) {
    return 'must not start or end with a space';
  }
  return undefined;
}

/** Whether two strings are the same bytes, in time that depends only on their lengths (so
 * that the time taken does not tell how much of a forged signature was right). */
function constantTimeEqual(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  if (left.length !== right.length) {
    return false;
  }
  let difference = 0;
  for (let i = 0; i < left.length; i += 1) {
    difference |= left[i] ^ right[i];
  }
  return difference === 0;
}

/** Rust's white space (Unicode's `White_Space`): unlike `String.prototype.trim`, U+0085 is
 * space and the byte-order mark U+FEFF is not. */
const SPACE = '[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const EDGE_SPACE = new RegExp(`^${SPACE}+|${SPACE}+$`, 'g');

/** `text` without white space at either end, as Rust's `trim`. */
function trim(text: string): string {
  return text.replace(EDGE_SPACE, '');
}

/** Lower case for ASCII letters only, as Rust's `to_ascii_lowercase` (`toLowerCase` would also
 * fold, say, the Kelvin sign into a `k`). */
function asciiLower(text: string): string {
  return text.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
}

/** The code points Rust's `{:?}` writes as `\u{...}`: controls, format characters, separators
 * other than the space, the combining marks' blocks, surrogates, private use and
 * noncharacters. (Rust's table also escapes every unassigned code point and every combining
 * mark; the engine's regular expressions have no `\p{...}` to tell those, so only the common
 * blocks are listed.) */
const ESCAPED: ReadonlyArray<readonly [number, number]> = [
  [0x00, 0x1f], [0x7f, 0xa0], [0xad, 0xad], [0x300, 0x36f], [0x483, 0x489], [0x600, 0x605],
  [0x61c, 0x61c], [0x6dd, 0x6dd], [0x70f, 0x70f], [0x180e, 0x180e], [0x1680, 0x1680],
  [0x1ab0, 0x1aff], [0x1dc0, 0x1dff], [0x2000, 0x200f], [0x2028, 0x202f], [0x205f, 0x206f],
  [0x20d0, 0x20ff], [0x3000, 0x3000], [0xd800, 0xf8ff], [0xfe00, 0xfe0f], [0xfe20, 0xfe2f],
  [0xfeff, 0xfeff], [0xfff9, 0xfffb], [0xfffe, 0xffff], [0xe0000, 0xe0fff], [0xf0000, 0x10ffff],
];

/** `text` quoted as Rust's `{:?}` writes a string (`"`) or a character (`'`), which the Rust
 * parser's messages quote values with. */
function quoted(text: string, quote: '"' | "'" = '"'): string {
  let out = quote;
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === quote || char === '\\') {
      out += `\\${char}`;
    } else if (char === '\t') {
      out += '\\t';
    } else if (char === '\r') {
      out += '\\r';
    } else if (char === '\n') {
      out += '\\n';
    } else if (char === '\0') {
      out += '\\0';
    } else if (ESCAPED.some(([first, last]) => first <= code && code <= last)) {
      out += `\\u{${code.toString(16)}}`;
    } else {
      out += char;
    }
  }
  return out + quote;
}
