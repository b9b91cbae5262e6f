// What the TypeScript SDK promises a parser, one case per `?case=` (the tests drive it with
// `telehook test` and `telehook run`): the request as the platform's `FetchRequest`, `console`
// in the invocation log, `Date` at the receive time, timers that never wait, and what each
// kind of thrown value becomes.
import {
  HttpResponse,
  ParseError,
  VoipCallDirection,
  VoipCallDisposition,
  VoipWebhookEvent,
  settings,
  type FetchRequest,
  type VoipWebhookParseResult,
} from '@telehook/parser';

const sleep = (ms: number) => new Promise<string>((resolve) => setTimeout(() => resolve(`after ${ms} ms`), ms));

export async function VoipParseWebhookRequest(request: FetchRequest): Promise<VoipWebhookParseResult> {
  switch (request.query.case) {
    case 'request':
      return {
        response: new HttpResponse().json({
          method: request.method,
          url: request.url,
          path: request.path,
          contentType: request.headers['Content-Type'],
          repeated: request.headers['x-repeated'],
          query: request.query,
          queryList: request.queryList,
          body: request.body ?? null,
          bytes: request.bodyBytes.length,
        }),
      };
    case 'console':
      console.log('plain', 42, { nested: [1, 2] });
      console.warn('a warning');
      console.error(new TypeError('shown with its stack'));
      return {};
    case 'clock': {
      const timer = await sleep(60_000);
      return {
        response: new HttpResponse().json({
          now: Date.now(),
          date: new Date().toISOString(),
          receivedAt: request.receivedAt.toISOString(),
          performance: performance.now(),
          timer,
          parsed: new Date('2020-01-02T03:04:05Z').getTime(),
        }),
      };
    }
    case 'record':
      return {
        callRecord: {
          callId: 'c-1',
          direction: VoipCallDirection.Out,
          disposition: VoipCallDisposition.Answered,
          srcPhone: '101',
          dstPhone: '+74951234567',
          dstPhoneExt: '101',
          duration: 42,
          call: { link: 'https://records.example.com/c-1.mp3' },
        },
        deliveryId: 'delivery-1',
        response: { status: 202, headers: { 'content-type': 'text/plain' }, body: 'stored' },
      };
    case 'refuse':
      throw new ParseError('the signature is not ours', { status: 403 });
    case 'setting':
      settings.require('api_secret');
      return { event: { event: VoipWebhookEvent.NotifyEnd, callId: 'c-1', disposition: VoipCallDisposition.Busy } };
    case 'malformed':
      return JSON.parse(request.body ?? '');
    case 'type-error': {
      const missing: any = undefined;
      return missing.field;
    }
    case 'throw-string':
      throw 'a plain string';
    case 'bad-result':
      return { event: { event: 'NotifyStart' as VoipWebhookEvent, disposition: VoipCallDisposition.Unknown } };
    default:
      return {};
  }
}
