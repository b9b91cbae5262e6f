// Gravitel's cloud PBX ("REST API ВАТС (CRM)") in TypeScript: the same parser as
// `catalog/gravitel` (its README and `src/crm.rs` give the protocol and every decision),
// written the platform's way and passing the same samples. The PBX posts every command to the
// one CRM URL, form-urlencoded, with the «Ключ для авторизации в вашей CRM» as `crm_token`:
// `cmd=event` reports a call ringing, answered and ending, `cmd=history` the finished call,
// `cmd=contact` asks for a client's name.
//
// The Rust SDK's helpers the Rust parser leans on (its form and header readers, `phone::number`,
// `crypto::constant_time_eq`, the `{:?}` quoting of its messages) are reproduced below as small
// functions, so that this parser answers every request as the Rust one does.
import {
  ParseError,
  VoipCallDirection,
  VoipCallDisposition,
  VoipWebhookEvent,
  log,
  redact,
  settings,
  type FetchRequest,
  type VoipCallRecord,
  type VoipWebhookParseResult,
  type VoipWebhookRequest,
} from '@telehook/parser';

/** The setting holding the key typed into the PBX, which it sends back as `crm_token`. */
const CRM_TOKEN = 'crm_token';
/** The content type the PBX posts (and the only one the platform's own module accepts). */
const FORM = 'application/x-www-form-urlencoded';
/** The largest duration the contract carries (a `u32` of seconds). */
const U32_MAX = 0xffffffff;

async function VoipParseWebhookRequest(request: FetchRequest): Promise<VoipWebhookParseResult> {
  if (asciiLower(request.method) !== 'get' && mediaType(request) !== FORM) {
    const got = header(request, 'content-type');
    // The platform module's refusal, in its words.
    throw new ParseError(
      `Expected Content-Type to be "${FORM}" (got: ${got === undefined ? 'no Content-Type header' : quoted(got)})`,
    );
  }
  const fields = new Fields(request);
  checkToken(fields);
  const cmd = fields.get('cmd');
  switch (cmd) {
    case 'event':
      return { event: callEvent(fields) };
    case 'history':
      return { callRecord: history(fields) };
    case 'contact':
      // "Команда для получения информации о названии клиента": there is no contact book here;
      // the empty 200 is what the platform's module answers too.
      log.info('`cmd=contact` answered with the default 200: no contact book here');
      return {};
    default:
      log.info(`ignoring \`cmd=${cmd ?? ''}\`: not a call notification`);
      return {};
  }
}

/** The request's fields: the form body's, then the query's (`history` may come as a `GET`,
 * "history (GET/POST)" in ITooLabs' table of contents). */
class Fields {
  private readonly pairs: Array<[string, string]>;

  constructor(request: FetchRequest) {
    this.pairs = [...new URLSearchParams(bodyText(request)), ...request.queryList];
  }

  /** The first value of a field; an empty one counts as absent (the platform's module reads
   * `data.ext ?? ''`, so `ext=` means "no extension"). Only an empty one: a blank value is
   * kept, so that a blank `crm_token` is refused as wrong rather than as missing. */
  get(name: string): string | undefined {
    const value = this.pairs.find(([key]) => key === name)?.[1];
    return value === '' ? undefined : value;
  }

  /** `callid`, "уникальный id звонка, совпадает для всех связанных звонков": the whole call,
   * across the members of a group and a transfer, so the contract's call id. */
  callId(): string | undefined {
    return this.get('callid');
  }

  /** The operator: the extension, else the user's direct number (`telnum`), else the login
   * (`user`), for a user without an extension; admins bind whichever of these they use. */
  operator(): string | undefined {
    return this.get('ext') ?? this.get('telnum') ?? this.get('user');
  }

  /** The client's number (`phone`); a withheld one is `anonymous`. */
  client(): string {
    return phoneNumber(this.get('phone') ?? '');
  }
}

/** The media type, lower case, without its parameters (`; charset=UTF-8` is accepted). */
function mediaType(request: FetchRequest): string | undefined {
  const value = header(request, 'content-type');
  return value === undefined ? undefined : asciiLower(trim(value.split(';')[0]));
}

/** Refuses a request whose `crm_token` is missing or is not the setting's, compared exactly
 * (case matters: it is a secret) and in constant time. The token is hidden from the host's
 * copy of the request. */
function checkToken(fields: Fields): void {
  const expected = settings.require(CRM_TOKEN);
  const sent = fields.get(CRM_TOKEN);
  if (sent === undefined) {
    throw new ParseError(
      `the request has no \`${CRM_TOKEN}\` field: the PBX sends the «Ключ для авторизации в вашей CRM» of its CRM integration with every request`,
      { status: 401 },
    );
  }
  redact(sent);
  if (!constantTimeEqual(sent, expected)) {
    throw new ParseError(
      `the request's \`${CRM_TOKEN}\` is not the integration's \`${CRM_TOKEN}\` setting: forged, or the PBX has another key for its CRM`,
      { status: 401 },
    );
  }
}

/**
 * A `cmd=event` of the five types Gravitel sends, or the platform module's refusal of any
 * other `type`:
 *
 * | `type` | event | disposition |
 * |---|---|---|
 * | `INCOMING` | start, `in` | unknown |
 * | `OUTGOING` | start, `out` | unknown |
 * | `ACCEPTED` | answer, `direction` | unknown |
 * | `COMPLETED` | end, `direction` | answered |
 * | `CANCELLED` | end, `direction` | cancel without `ext`; unknown with one |
 *
 * A `CANCELLED` naming a member's `ext` may only mean that another member of the group
 * answered, and the host keeps a call's first end: `unknown` leaves the outcome to the answer
 * or the history. Without `ext` it is the call itself dropped in the queue, a `cancel`.
 */
function callEvent(fields: Fields): VoipWebhookRequest {
  const type = fields.get('type');
  if (type === undefined) {
    throw new ParseError('Unknown event type: the event has no `type` field');
  }
  let event: VoipWebhookEvent;
  let direction: VoipCallDirection | undefined;
  let disposition: VoipCallDisposition = VoipCallDisposition.Unknown;
  switch (type) {
    case 'INCOMING':
      [event, direction] = [VoipWebhookEvent.NotifyStart, VoipCallDirection.In];
      break;
    case 'OUTGOING':
      [event, direction] = [VoipWebhookEvent.NotifyStart, VoipCallDirection.Out];
      break;
    case 'ACCEPTED':
      [event, direction] = [VoipWebhookEvent.NotifyAnswer, directionField(fields)];
      break;
    case 'COMPLETED':
      [event, direction] = [VoipWebhookEvent.NotifyEnd, directionField(fields)];
      disposition = VoipCallDisposition.Answered;
      break;
    case 'CANCELLED':
      [event, direction] = [VoipWebhookEvent.NotifyEnd, directionField(fields)];
      if (fields.get('ext') === undefined) {
        disposition = VoipCallDisposition.Cancel;
      }
      break;
    default:
      throw new ParseError(`Unknown event type ${quoted(type)}`);
  }
  const callId = fields.callId();
  if (direction === undefined) {
    if (callId !== undefined) {
      // Gravitel's 2017 field list has no `direction`: the call's start said it, and the host
      // completes the event from it.
      return { event, callId, disposition };
    }
    log.warn(
      `\`${type}\` has neither \`direction\` nor \`callid\`: taken as incoming, as the platform's module takes every event`,
    );
    direction = VoipCallDirection.In;
  }
  const parties = partiesOf(direction, fields);
  if (parties === undefined) {
    return { event, callId: ofCall(fields, type), disposition };
  }
  return { event, direction, disposition, callId, ...parties };
}

/** A `cmd=history`'s record: `out` for `type=out`, else `in` (as the platform's module reads
 * it); the duration ("общая длительность звонка") only for an answered call, since the
 * contract counts the conversation; as `call` the recording `link`, else the `callid`. */
function history(fields: Fields): VoipCallRecord {
  const disposition = historyDisposition(fields.get('status') ?? '');
  const duration = disposition === VoipCallDisposition.Answered ? seconds(fields, 'duration') : 0;
  const direction = fields.get('type') === 'out' ? VoipCallDirection.Out : VoipCallDirection.In;
  const call = fields.get('link') ?? fields.callId();
  if (call === undefined) {
    throw new ParseError(
      "the history has neither a recording `link` nor a `callid`: nothing to keep as the call's data",
    );
  }
  const parties = partiesOf(direction, fields);
  if (parties === undefined) {
    return { callId: ofCall(fields, 'history'), disposition, duration, call };
  }
  return { direction, disposition, duration, call, callId: fields.callId(), ...parties };
}

/** The platform module's `toCallDisposition`, case for case, plus Gravitel's own lower-case
 * `missed` (its status list writes it so, and the module would leave it `unknown`). Every
 * other value is matched exactly: `success` is `unknown`. */
function historyDisposition(status: string): VoipCallDisposition {
  switch (status) {
    case 'Success':
      return VoipCallDisposition.Answered;
    case 'Busy':
      return VoipCallDisposition.Busy;
    case 'Missed':
    case 'missed':
      return VoipCallDisposition.Cancel;
    case 'NotAvailable':
      return VoipCallDisposition.NoAnswer;
    default:
      return VoipCallDisposition.Unknown;
  }
}

/** Whole seconds the way the platform's module reads them (`parseInt`: the leading digits);
 * 0, with a warning, when there are none or they do not fit the contract's `u32`. */
function seconds(fields: Fields, name: string): number {
  const value = fields.get(name);
  if (value === undefined) {
    return 0;
  }
  const digits = /^[0-9]*/.exec(trim(value))?.[0] ?? '';
  const number = Number(digits);
  if (digits === '' || number > U32_MAX) {
    log.warn(`\`${name}\` is not a number of seconds: ${quoted(value)}; taken as 0`);
    return 0;
  }
  return number;
}

/** The `direction` of an answer or an end; none when it is absent (Gravitel 2017) or another
 * value, so that the event names only its call. */
function directionField(fields: Fields): VoipCallDirection | undefined {
  const value = fields.get('direction');
  switch (value) {
    case undefined:
      return undefined;
    case 'in':
      return VoipCallDirection.In;
    case 'out':
      return VoipCallDirection.Out;
    default:
      log.warn(`unknown \`direction\` ${quoted(value)} (expected in or out): the event names only its call`);
      return undefined;
  }
}

/** The call id of a notification whose parties cannot be told, or why it is refused. */
function ofCall(fields: Fields, what: string): string {
  const callId = fields.callId();
  if (callId === undefined) {
    throw new ParseError(
      `\`${what}\` names no operator (\`ext\`, \`telnum\`, \`user\`), no called line (\`diversion\`) and no \`callid\`: nothing to tie it to`,
    );
  }
  return callId;
}

type Parties = Pick<VoipWebhookRequest, 'srcPhone' | 'srcPhoneExt' | 'dstPhone' | 'dstPhoneExt'>;

/** Who called whom, in the contract's terms. `in`: the client calls the operator, or, while
 * no one has the call (a queue), the line called (`diversion`; `telnum` is the operator's own
 * number, never the company's), with the operator's `ext` as `srcPhoneExt`. `out`: the
 * operator calls the client, `ext` as `dstPhoneExt`. None when the operator's side is unknown. */
function partiesOf(direction: VoipCallDirection, fields: Fields): Parties | undefined {
  const ext = fields.get('ext');
  if (direction === VoipCallDirection.Out) {
    const operator = fields.operator();
    return operator === undefined ? undefined : { srcPhone: operator, dstPhone: fields.client(), dstPhoneExt: ext };
  }
  const called = fields.operator() ?? fields.get('diversion');
  return called === undefined ? undefined : { srcPhone: fields.client(), dstPhone: called, srcPhoneExt: ext };
}

// ---- What the Rust SDK gives the Rust parser ----

/** The first value of a header, whatever the case of its name (`request.headers` would join
 * a repeated one). */
function header(request: FetchRequest, name: string): string | undefined {
  const lower = asciiLower(name);
  return request.headerList.find(([key]) => asciiLower(key) === lower)?.[1];
}

/** The body as text for the form decoder. A leading byte-order mark is kept, as the Rust
 * SDK's decoder keeps it (it then is part of the first field's name); `request.body` drops it. */
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

/** Whether two strings are the same bytes, in time that depends only on their lengths (so
 * that the time taken does not tell how much of a forged token was right). */
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

/** `text` quoted as Rust's `{:?}` writes it, which the Rust parser's messages (and so the
 * samples' refusals) quote values with. */
function quoted(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === '"' || char === '\\') {
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
  return `${out}"`;
}
