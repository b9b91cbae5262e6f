// Gravitel's cloud PBX ("REST API ВАТС (CRM)") in TypeScript: the same parser as
// `catalog/gravitel` (read its README and `src/crm.rs` for the protocol and every decision),
// written the platform's way, passing the same samples. The PBX posts every command to the one
// CRM URL, form-urlencoded, with the «Ключ для авторизации в вашей CRM» as `crm_token`.
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

const CRM_TOKEN = 'crm_token';
const FORM = 'application/x-www-form-urlencoded';
/** How providers write a withheld caller (compared ignoring case). */
const ANONYMOUS = ['anonymous', 'restricted', 'private', 'unavailable', 'unknown', 'withheld', '+266696687', '266696687'];

async function VoipParseWebhookRequest(request: FetchRequest): Promise<VoipWebhookParseResult> {
  if (request.method.toUpperCase() !== 'GET' && mediaType(request) !== FORM) {
    const got = request.headers['content-type'];
    throw new ParseError(
      `Expected Content-Type to be "${FORM}" (got: ${got === undefined ? 'no Content-Type header' : JSON.stringify(got)})`,
    );
  }
  const fields = new Fields(request);
  checkToken(fields);
  switch (fields.get('cmd')) {
    case 'event':
      return { event: callEvent(fields) };
    case 'history':
      return { callRecord: history(fields) };
    case 'contact':
      // No contact book here: the empty 200 is what the platform's module answers too.
      log.info('`cmd=contact` answered with the default 200: no contact book here');
      return {};
    default:
      log.info(`ignoring \`cmd=${fields.get('cmd') ?? ''}\`: not a call notification`);
      return {};
  }
}

/** The form body's fields, then the query's (a `history` may come as a GET); the first of a
 * repeated name wins, and an empty value counts as absent (`ext=` means no extension). */
class Fields {
  private readonly pairs: Array<[string, string]>;

  constructor(request: FetchRequest) {
    this.pairs = [...new URLSearchParams(request.body ?? ''), ...request.queryList];
  }

  get(name: string): string | undefined {
    const found = this.pairs.find(([key]) => key === name);
    return found && found[1] !== '' ? found[1] : undefined;
  }

  /** `callid`: the same for every leg of the call, so the contract's call id. */
  callId(): string | undefined {
    return this.get('callid');
  }

  /** The operator: the extension, else the direct number (`telnum`), else the login. */
  operator(): string | undefined {
    return this.get('ext') ?? this.get('telnum') ?? this.get('user');
  }

  /** The client's number (`phone`); a withheld one is `anonymous`. */
  client(): string {
    return phoneNumber(this.get('phone') ?? '');
  }
}

function mediaType(request: FetchRequest): string | undefined {
  const value = request.headers['content-type'];
  return value?.split(';')[0].trim().toLowerCase();
}

/** A missing or wrong `crm_token` is a 401; the token is hidden from what the host keeps. */
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

function constantTimeEqual(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  let difference = left.length ^ right.length;
  for (let i = 0; i < Math.max(left.length, right.length); i += 1) {
    difference |= (left[i] ?? 0) ^ (right[i] ?? 0);
  }
  return difference === 0;
}

/** A `cmd=event`: INCOMING/OUTGOING start, ACCEPTED answers, COMPLETED ends answered,
 * CANCELLED ends cancelled, or `unknown` when it names a group member's `ext` (another member
 * may have answered: the call's answer or history says how it ended). */
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
      throw new ParseError(`Unknown event type ${JSON.stringify(type)}`);
  }
  const callId = fields.callId();
  if (direction === undefined) {
    if (callId !== undefined) {
      // Gravitel's 2017 field list has no `direction`: the call's start said it.
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

/** A `cmd=history`: the platform module's disposition, and the duration only when answered. */
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

/** The platform module's `toCallDisposition`, reading Gravitel's own `missed` as `Missed`. */
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

/** Whole seconds as `parseInt` reads them (the leading digits); 0, with a warning, otherwise. */
function seconds(fields: Fields, name: string): number {
  const value = fields.get(name);
  if (value === undefined) {
    return 0;
  }
  const digits = /^\d+/.exec(value.trim());
  if (digits === null) {
    log.warn(`\`${name}\` is not a number of seconds: ${JSON.stringify(value)}; taken as 0`);
    return 0;
  }
  return Number(digits[0]);
}

/** `direction` of an answer or an end; none when absent or unknown (the event then names only
 * its call). */
function directionField(fields: Fields): VoipCallDirection | undefined {
  const value = fields.get('direction');
  if (value === 'in') {
    return VoipCallDirection.In;
  }
  if (value === 'out') {
    return VoipCallDirection.Out;
  }
  if (value !== undefined) {
    log.warn(`unknown \`direction\` ${JSON.stringify(value)} (expected in or out): the event names only its call`);
  }
  return undefined;
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

type Parties = Pick<VoipWebhookRequest, 'srcPhone' | 'dstPhone' | 'srcPhoneExt' | 'dstPhoneExt'>;

/** `in`: the client calls the operator, or the line called (`diversion`) while none has the
 * call; `out`: the operator calls the client. None when the operator's side is unknown. */
function partiesOf(direction: VoipCallDirection, fields: Fields): Parties | undefined {
  const ext = fields.get('ext');
  if (direction === VoipCallDirection.Out) {
    const operator = fields.operator();
    return operator === undefined ? undefined : { srcPhone: operator, dstPhone: fields.client(), dstPhoneExt: ext };
  }
  const called = fields.operator() ?? fields.get('diversion');
  return called === undefined ? undefined : { srcPhone: fields.client(), dstPhone: called, srcPhoneExt: ext };
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
