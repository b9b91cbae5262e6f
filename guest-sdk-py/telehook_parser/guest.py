"""The boundary between the contract and a parser written with this SDK.

``export(handler)`` is the component's ``WitWorld``: the request becomes a ``FetchRequest``, the
parser's dict (or what it raised) becomes the contract's result, ``print`` writes to the
invocation log and ``time.time()`` is the request's receive time. What the handler raises
decides the answer: a ``ParseError`` is a refusal with its status or setting; a ``ValueError``
from ``json`` (a malformed body) a refusal with status 400; anything else is the parser's
crash, logged at ``error`` as ``uncaught ...`` with its traceback and reported by the host as a
trap, so that the provider retries and the admin reads why.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
import traceback

from componentize_py_types import Err
from wit_world.imports import host, types

from telehook_parser import FetchRequest, HttpResponse, ParseError, _Headers

_U32_MAX = 0xFFFFFFFF


class ResultError(Exception):
    """A mistake in what the parser returned, named by its field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"the parser's result is invalid at `{field}`: {message}")


class _LogWriter:
    """``sys.stdout``/``sys.stderr`` as lines of the invocation log."""

    def __init__(self, level):
        self._level = level
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            host.log(self._level, line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            host.log(self._level, self._pending)
            self._pending = ""


def _install_globals(received_at_ms: int) -> None:
    sys.stdout = _LogWriter(host.LogLevel.INFO)
    sys.stderr = _LogWriter(host.LogLevel.ERROR)
    time.time = lambda: received_at_ms / 1000
    time.time_ns = lambda: received_at_ms * 1_000_000


def _fetch_request(request: types.Request) -> FetchRequest:
    headers = _Headers()
    for name, value in request.headers:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    query: dict = {}
    for name, value in request.query:
        query.setdefault(name, value)
    body = bytes(request.body)
    return FetchRequest(
        method=request.method,
        url=request.url,
        path=request.path_with_query,
        headers=headers,
        query=query,
        body=body.decode("utf-8", "replace") if body else None,
        body_bytes=body,
        header_list=list(request.headers),
        query_list=list(request.query),
        route_suffix=request.route_suffix,
        received_at=datetime.datetime.fromtimestamp(
            request.received_at_ms / 1000, datetime.timezone.utc
        ),
        received_at_ms=request.received_at_ms,
    )


def _member(enum, value, field: str):
    text = getattr(value, "value", value)
    for member in enum:
        if member.name.lower().replace("_", "-") == text:
            return member
    allowed = ", ".join(member.name.lower().replace("_", "-") for member in enum)
    raise ResultError(field, f"{value!r} is not one of {allowed}")


def _optional_string(value, field: str):
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ResultError(field, f"expected a string, got {value!r}")
    return value


def _call_fields(call: dict, field: str) -> dict:
    direction = call.get("direction")
    return {
        "call_id": _optional_string(call.get("call_id"), f"{field}.call_id"),
        "direction": None
        if direction is None
        else _member(types.Direction, direction, f"{field}.direction"),
        "disposition": _member(
            types.Disposition, call.get("disposition", "unknown"), f"{field}.disposition"
        ),
        "src_phone": _optional_string(call.get("src_phone"), f"{field}.src_phone"),
        "src_phone_ext": _optional_string(call.get("src_phone_ext"), f"{field}.src_phone_ext"),
        "dst_phone": _optional_string(call.get("dst_phone"), f"{field}.dst_phone"),
        "dst_phone_ext": _optional_string(call.get("dst_phone_ext"), f"{field}.dst_phone_ext"),
    }


def _event(event: dict) -> types.TelephonyEvent:
    return types.TelephonyEvent(
        event=_member(types.EventType, event.get("event"), "event.event"),
        **_call_fields(event, "event"),
    )


def _call_record(record: dict) -> types.CallRecord:
    duration = record.get("duration", 0)
    if isinstance(duration, str) and duration.isdigit():
        duration = int(duration)
    if not isinstance(duration, int) or isinstance(duration, bool) or not 0 <= duration <= _U32_MAX:
        raise ResultError("call_record.duration", f"expected whole seconds, got {duration!r}")
    call = record.get("call")
    return types.CallRecord(
        duration=duration,
        call=call if isinstance(call, str) else json.dumps(call),
        **_call_fields(record, "call_record"),
    )


def _response(reply) -> types.Response:
    if isinstance(reply, HttpResponse):
        return types.Response(status=reply._status, headers=reply._headers, body=reply._body)
    headers = reply.get("headers", {})
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    body = reply.get("body", b"")
    return types.Response(
        status=int(reply.get("status", 200)),
        headers=[(str(name), str(value)) for name, value in pairs],
        body=body.encode() if isinstance(body, str) else bytes(body),
    )


def _parse_result(result) -> types.ParseResult:
    if result is None:
        result = {}
    if not isinstance(result, dict):
        raise ResultError("", f"expected a dict, got {type(result).__name__}")
    event, record, reply = result.get("event"), result.get("call_record"), result.get("response")
    return types.ParseResult(
        event=None if event is None else _event(event),
        call_record=None if record is None else _call_record(record),
        response=None if reply is None else _response(reply),
        delivery_id=_optional_string(result.get("delivery_id"), "delivery_id"),
    )


def _describe(crash: BaseException) -> str:
    """The exception and where it was raised. Not ``traceback.format_exception``: it reads the
    source files for their lines, and a component has no files."""
    frames = [
        f'  File "{frame.f_code.co_filename}", line {line}, in {frame.f_code.co_name}'
        for frame, line in traceback.walk_tb(crash.__traceback__)
    ]
    return "\n".join([f"{type(crash).__name__}: {crash}", "Traceback (most recent call last):", *frames])


def export(handler):
    """The ``WitWorld`` class componentize-py exports, serving ``handler(request)``."""

    class WitWorld:
        def parse_webhook_request(self, request: types.Request) -> types.ParseResult:
            _install_globals(request.received_at_ms)
            try:
                return _parse_result(handler(_fetch_request(request)))
            except ParseError as refusal:
                raise Err(types.ParseError(refusal.message, refusal.status, refusal.setting))
            except json.JSONDecodeError as malformed:
                host.log(host.LogLevel.WARN, f"refused: {malformed}")
                raise Err(types.ParseError(str(malformed), 400, None))
            except Exception as crash:
                host.log(host.LogLevel.ERROR, f"uncaught {_describe(crash)}")
                raise

    return WitWorld
