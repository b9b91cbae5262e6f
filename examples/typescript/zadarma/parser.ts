// Zadarma (and Novofon classic) in TypeScript: the same parser as `catalog/zadarma` (read its
// README for the protocol and every decision), written the platform's way, passing the same
// samples. Zadarma posts NOTIFY_* notifications, form-urlencoded (or multipart), signed in the
// `Signature` header with base64(hex(HMAC-SHA1(fields, api_secret))), and checks the webhook
// URL with `GET ?zd_echo=...`, which must be answered with the value.
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

const API_SECRET = 'api_secret';
/** Zadarma's PBX extensions are three digits: a destination like that is a colleague. */
const EXTENSION = /^\d{3}$/;
const PHONE_CHARS = '+*#@.:_-()/ ';
const ANONYMOUS = ['anonymous', 'restricted', 'private', 'unavailable', 'unknown', 'withheld', '+266696687', '266696687'];

async function VoipParseWebhookRequest(request: FetchRequest): Promise<VoipWebhookParseResult> {
  const echo = request.queryList.find(([name]) => name === 'zd_echo');
  if (echo !== undefined) {
    return { response: new HttpResponse().header('content-type', 'text/plain; charset=utf-8').content(echo[1]) };
  }
  const fields = new Fields(request);
  const event = fields.get('event');
  if (event === undefined) {
    throw new ParseError(
      'the request has no `event` field: not a Zadarma or Novofon classic NOTIFY_* notification (Novofon 2.0 sends another format)',
    );
  }
  const signed = signedFields(event);
  if (signed === undefined) {
    log.info(`ignoring \`${event}\`: not a notification this parser knows, nothing verified`);
    return {};
  }
  await verify(request, fields, event, signed);
  return translate(event, fields);
}

/** The fields each notification's signature covers, in order (Zadarma's PHP library). */
function signedFields(event: string): string[] | undefined {
  switch (event) {
    case 'NOTIFY_START':
    case 'NOTIFY_INTERNAL':
    case 'NOTIFY_END':
    case 'NOTIFY_IVR':
      return ['caller_id', 'called_did', 'call_start'];
    case 'NOTIFY_ANSWER':
      return ['caller_id', 'destination', 'call_start'];
    case 'NOTIFY_OUT_START':
    case 'NOTIFY_OUT_END':
      return ['internal', 'destination', 'call_start'];
    case 'NOTIFY_RECORD':
      return ['pbx_call_id', 'call_id_with_rec'];
    case 'SMS':
    case 'SPEECH_RECOGNITION':
    case 'NUMBER_LOOKUP':
    case 'CALL_TRACKING':
      return ['result'];
    default:
      return undefined;
  }
}

async function verify(request: FetchRequest, fields: Fields, event: string, signed: string[]): Promise<void> {
  const secret = settings.require(API_SECRET);
  const signature = request.headers['signature']?.trim();
  if (!signature) {
    throw new ParseError(
      `\`${event}\` has no \`Signature\` header: the provider signs notifications only once the account has API keys (generate them and set \`${API_SECRET}\` to the secret)`,
      { status: 401 },
    );
  }
  const expected = await signatureOf(secret, signed.map((name) => fields.get(name) ?? '').join(''));
  if (!constantTimeEqual(expected, signature)) {
    throw new ParseError(
      `the \`Signature\` header of \`${event}\` is not the HMAC of its fields ${signed.join(' + ')} under \`${API_SECRET}\`: forged, altered, or signed with another account's secret`,
      { status: 401 },
    );
  }
}

/** base64 of the HMAC-SHA1's hex digest, as Zadarma's PHP library computes it. */
async function signatureOf(secret: string, message: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-1' }, false, ['sign']);
  const digest = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(message)));
  const hex = Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return btoa(hex);
}

function constantTimeEqual(a: string, b: string): boolean {
  let difference = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
    difference |= (a.charCodeAt(i) || 0) ^ (b.charCodeAt(i) || 0);
  }
  return difference === 0;
}

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
      // The answer names only its call: the start said who called whom.
      event = { event: VoipWebhookEvent.NotifyAnswer, disposition: VoipCallDisposition.Unknown };
      break;
    case 'NOTIFY_RECORD':
      log.info("`NOTIFY_RECORD` verified and acknowledged: its recording id came with the call's end already");
      return {};
    default:
      log.info(`\`${notification}\` verified and acknowledged: the platform has no event for it`);
      return {};
  }
  event.callId = fields.require('pbx_call_id');
  return event.event === VoipWebhookEvent.NotifyEnd ? finished(event, fields) : { event };
}

/** A call to the company: the client calls the extension that took it, else the line. */
function incoming(kind: VoipWebhookEvent, fields: Fields, dstField: string): VoipWebhookRequest {
  const client = phone(fields.get('caller_id') ?? '', 'caller_id');
  const extension = fields.nonEmpty('internal');
  const operator =
    extension !== undefined ? phone(extension, 'internal') : phone(fields.require(dstField), dstField);
  return {
    event: kind,
    direction: VoipCallDirection.In,
    disposition: VoipCallDisposition.Unknown,
    srcPhone: client,
    dstPhone: operator,
    srcPhoneExt: extension,
  };
}

/** An operator's call: to a client, or to a colleague's three-digit extension (internal). */
function outgoing(kind: VoipWebhookEvent, fields: Fields): VoipWebhookRequest {
  const extension = fields.nonEmpty('internal');
  let operator = extension;
  if (operator === undefined) {
    const caller = fields.nonEmpty('caller_id');
    if (caller === undefined || caller === '0') {
      throw new ParseError('an outgoing call with neither `internal` nor `caller_id`');
    }
    operator = caller;
  }
  const source = phone(operator, 'internal');
  const destination = phone(fields.require('destination'), 'destination');
  const disposition = VoipCallDisposition.Unknown;
  if (EXTENSION.test(destination)) {
    return { event: kind, direction: VoipCallDirection.Internal, disposition, srcPhone: source, dstPhone: destination };
  }
  return {
    event: kind,
    direction: VoipCallDirection.Out,
    disposition,
    srcPhone: source,
    dstPhone: destination,
    dstPhoneExt: extension,
  };
}

/** An end: its disposition, and the call record with the talk time and the recording's id. */
function finished(event: VoipWebhookRequest, fields: Fields): VoipWebhookParseResult {
  event.disposition = disposition(fields.require('disposition'));
  const duration = event.disposition === VoipCallDisposition.Answered ? seconds(fields.require('duration')) : 0;
  const recording = fields.get('is_recorded') === '1' ? fields.nonEmpty('call_id_with_rec') : undefined;
  const call = recording ?? fields.require('pbx_call_id');
  const { event: _, ...callFields } = event;
  return { event, callRecord: { ...callFields, duration, call } };
}

function disposition(zadarma: string): VoipCallDisposition {
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
      log.warn(`undocumented disposition ${JSON.stringify(zadarma)}: reported as not answered`);
      return VoipCallDisposition.NoAnswer;
  }
}

function seconds(text: string): number {
  const trimmed = text.trim();
  if (!/^\+?\d+$/.test(trimmed) || Number(trimmed) > 0xffffffff) {
    throw new ParseError(`\`duration\` is not a number of seconds: ${JSON.stringify(text)}`);
  }
  return Number(trimmed);
}

/** The number a field names, checked by the host's rule so that a bad one is refused here,
 * naming the field. */
function phone(raw: string, field: string): string {
  const number = phoneNumber(raw);
  const problem = phoneProblem(number);
  if (problem !== undefined) {
    throw new ParseError(`\`${field}\` is not a usable number: ${problem}`);
  }
  return number;
}

function phoneProblem(number: string): string | undefined {
  if (number === '') {
    return 'must not be empty';
  }
  const length = new TextEncoder().encode(number).length;
  if (length > 64) {
    return `${length} bytes is longer than the limit of 64`;
  }
  const bad = [...number].find((c) => !/^[A-Za-z0-9]$/.test(c) && !PHONE_CHARS.includes(c));
  if (bad !== undefined) {
    return `contains '${bad}'; allowed are ASCII letters, digits and "${PHONE_CHARS}"`;
  }
  if (number.startsWith(' ') || number.endsWith(' ')) {
    return 'must not start or end with a space';
  }
  return undefined;
}

/** The user part of a SIP or tel URI, or `anonymous` for a withheld caller. */
function phoneNumber(raw: string): string {
  let text = raw.trim();
  const open = text.indexOf('<');
  const close = text.lastIndexOf('>');
  if (open !== -1 && open < close) {
    text = text.slice(open + 1, close);
  }
  const scheme = ['sips:', 'sip:', 'tel:'].find((prefix) => text.toLowerCase().startsWith(prefix));
  if (scheme !== undefined) {
    text = text.slice(scheme.length).split('@')[0].split(';')[0].trim();
  }
  return text === '' || ANONYMOUS.some((marker) => marker.toLowerCase() === text.toLowerCase()) ? 'anonymous' : text;
}

/** The notification's fields: the body's (form-urlencoded, or multipart as Novofon may send
 * it), then the query's; the first of a repeated name wins. */
class Fields {
  private readonly pairs: Array<[string, string]>;

  constructor(request: FetchRequest) {
    const multipart = request.headers['content-type']?.trim().toLowerCase().startsWith('multipart/');
    const body = multipart ? multipartFields(request.body ?? '') : [...new URLSearchParams(request.body ?? '')];
    this.pairs = [...body, ...request.queryList];
  }

  get(name: string): string | undefined {
    return this.pairs.find(([key]) => key === name)?.[1];
  }

  nonEmpty(name: string): string | undefined {
    const value = this.get(name);
    return value !== undefined && value.trim() !== '' ? value : undefined;
  }

  require(name: string): string {
    const value = this.nonEmpty(name);
    if (value === undefined) {
      throw new ParseError(`the field \`${name}\` is missing or empty`);
    }
    return value;
  }
}

/** The text parts of a `multipart/form-data` body, by the delimiter its first line gives. */
function multipartFields(body: string): Array<[string, string]> {
  const firstLine = body.split('\r\n')[0];
  if (!firstLine.startsWith('--')) {
    return [];
  }
  const parts = body.slice(firstLine.length).split(`\r\n${firstLine}`);
  const fields: Array<[string, string]> = [];
  for (const part of parts) {
    if (!part.startsWith('\r\n')) {
      continue;
    }
    const split = part.indexOf('\r\n\r\n', 2);
    if (split === -1) {
      continue;
    }
    const headers = part.slice(2, split);
    const disposition = headers.split(/\r?\n/).find((line) => line.toLowerCase().startsWith('content-disposition:'));
    const name = disposition
      ?.split(';')
      .map((param) => param.trim())
      .find((param) => param.startsWith('name='))
      ?.slice('name='.length)
      .replace(/^"+|"+$/g, '');
    if (name !== undefined) {
      fields.push([name, part.slice(split + 4)]);
    }
  }
  return fields;
}
