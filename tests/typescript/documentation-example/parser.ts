// The platform's documentation example ("Telephony event", VoipWebhookRequest) exactly as the
// page gives it, with the one import line the SDK needs: a tenant's existing parser builds
// unchanged.
import { VoipWebhookEvent, VoipCallDirection, VoipCallDisposition } from '@telehook/parser';

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
        }
    };
}
