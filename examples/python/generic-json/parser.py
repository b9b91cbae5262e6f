"""The parser of the platform's documentation ("Telephony event"), in Python: every request
with a body is a ringing incoming call, with the callId carried through (as
examples/generic-json, in Rust, does). A request without a body gets the empty result."""

from telehook_parser import (
    FetchRequest,
    VoipCallDirection,
    VoipCallDisposition,
    VoipWebhookEvent,
)


def parse_webhook_request(request: FetchRequest) -> dict:
    if request.body is None:
        return {}
    data = request.json()
    return {
        "event": {
            "event": VoipWebhookEvent.NOTIFY_START,
            "direction": VoipCallDirection.IN,
            "src_phone": data.get("srcPhone"),
            "dst_phone": data.get("dstPhone"),
            "disposition": VoipCallDisposition.UNKNOWN,
            "call_id": data.get("callId"),
        }
    }
