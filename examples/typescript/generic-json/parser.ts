// The parser of the platform's documentation ("Telephony event", VoipWebhookRequest), as it
// is written there, with the SDK's import line and `callId` carried through so that the
// platform ties the call's later events to it (as `examples/generic-json`, in Rust, does).
import {
  VoipCallDirection,
  VoipCallDisposition,
  VoipWebhookEvent,
  type FetchRequest,
  type VoipWebhookParseResult,
} from '@telehook/parser';

async function VoipParseWebhookRequest(request: FetchRequest): Promise<VoipWebhookParseResult> {
  if (typeof request.body !== 'string') {
    return {};
  }
  const data = JSON.parse(request.body);
  return {
    event: {
      event: VoipWebhookEvent.NotifyStart,
      direction: VoipCallDirection.In,
      dstPhone: data.dstPhone,
      srcPhone: data.srcPhone,
      disposition: VoipCallDisposition.Unknown,
      callId: data.callId,
    },
  };
}
