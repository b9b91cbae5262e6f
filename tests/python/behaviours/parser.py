"""What the Python SDK promises a parser, one case per ``?case=`` (the tests drive it with
``telehook test`` and ``telehook run``): ``print`` in the invocation log, ``time.time()`` at the
receive time, and what each kind of raised exception becomes."""

import time

from telehook_parser import (
    FetchRequest,
    HttpResponse,
    ParseError,
    VoipCallDirection,
    VoipCallDisposition,
    VoipWebhookEvent,
    settings,
)


def parse_webhook_request(request: FetchRequest) -> dict:
    case = request.query.get("case")
    if case == "clock":
        print("printed", 42)
        return {
            "response": HttpResponse().json(
                {"time": time.time(), "received_at": request.received_at.isoformat()}
            )
        }
    if case == "record":
        return {
            "call_record": {
                "call_id": "c-1",
                "direction": VoipCallDirection.OUT,
                "disposition": VoipCallDisposition.ANSWERED,
                "src_phone": "101",
                "dst_phone": "+74951234567",
                "dst_phone_ext": "101",
                "duration": 42,
                "call": {"link": "https://records.example.com/c-1.mp3"},
            },
            "delivery_id": "delivery-1",
            "response": {"status": 202, "headers": {"content-type": "text/plain"}, "body": "stored"},
        }
    if case == "refuse":
        raise ParseError("the signature is not ours", status=403)
    if case == "setting":
        settings.require("api_secret")
        return {"event": {"event": VoipWebhookEvent.NOTIFY_END, "call_id": "c-1", "disposition": "busy"}}
    if case == "malformed":
        return request.json()
    if case == "key-error":
        return {}["missing"]
    if case == "bad-result":
        return {"event": {"event": "NotifyStart"}}
    return {}
