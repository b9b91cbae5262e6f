"""The telehook parser SDK for Python: the platform's names over the `telehook:parser` contract.

A parser is a module with one function::

    from telehook_parser import FetchRequest, VoipWebhookEvent, VoipCallDirection

    def parse_webhook_request(request: FetchRequest) -> dict:
        data = json.loads(request.body)
        return {"event": {"event": VoipWebhookEvent.NOTIFY_START, ...}}

and ``telehook build parser.py`` (or ``python -m telehook_parser build parser.py``) makes it a
component. The result is the platform's ``VoipWebhookParseResult`` as a dict with snake_case
keys (``event``, ``call_record``, ``response``, ``delivery_id``).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

__all__ = [
    "FetchRequest",
    "HttpResponse",
    "ParseError",
    "VoipCallDirection",
    "VoipCallDisposition",
    "VoipWebhookEvent",
    "log",
    "redact",
    "settings",
    "verify_ed25519",
]


class VoipWebhookEvent(str, Enum):
    """What happened in the call."""

    NOTIFY_START = "notify-start"
    NOTIFY_ANSWER = "notify-answer"
    NOTIFY_END = "notify-end"


class VoipCallDirection(str, Enum):
    """Who called whom; it decides what the phone fields mean."""

    IN = "in"
    OUT = "out"
    INTERNAL = "internal"


class VoipCallDisposition(str, Enum):
    """How the call ended; ``UNKNOWN`` until it has."""

    UNKNOWN = "unknown"
    ANSWERED = "answered"
    BUSY = "busy"
    CANCEL = "cancel"
    NO_ANSWER = "no-answer"


class ParseError(Exception):
    """A refusal: the provider gets ``status`` (400 unless given) and ``{"error": message}``.

    With ``setting`` the refusal is the admin's: the provider gets 503 to retry later and the
    integration's health names the setting.
    """

    def __init__(self, message: str, status: Optional[int] = None, setting: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.setting = setting

    @classmethod
    def misconfigured(cls, key: str, message: Optional[str] = None) -> "ParseError":
        """A refusal caused by the integration's setting ``key``, not by the request."""
        return cls(message or f"the integration setting `{key}` is not set", setting=key)


class _Headers(dict):
    """Headers by lower-case name; any case finds them."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def get(self, name: str, default=None):
        return super().get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())


@dataclass
class FetchRequest:
    """The provider's request, as the platform's ``FetchRequest`` gives it."""

    method: str
    #: The URL the provider called: scheme, authority, path and query (sign over this).
    url: str
    #: The path and query as requested.
    path: str
    #: By lower-case name (any case finds them); repeated ones joined by ``", "``.
    headers: dict
    #: The first value of each query parameter.
    query: dict
    #: The body as UTF-8 text; ``None`` when the request has none.
    body: Optional[str]
    body_bytes: bytes
    header_list: list = field(default_factory=list)
    query_list: list = field(default_factory=list)
    #: What follows the token in the webhook URL's path, without its leading ``/``.
    route_suffix: str = ""
    #: When the host received the request (UTC): the only clock a parser has.
    received_at: datetime.datetime = datetime.datetime.fromtimestamp(0, datetime.timezone.utc)
    received_at_ms: int = 0

    def json(self):
        """The body parsed as JSON; a malformed body is a refusal with status 400."""
        try:
            return json.loads(self.body or "")
        except ValueError as error:
            raise ParseError(f"the body is not JSON: {error}") from None

    def form(self) -> dict:
        """The body parsed as ``application/x-www-form-urlencoded``: the first value of each."""
        from urllib.parse import parse_qsl

        values: dict = {}
        for name, value in parse_qsl(self.body or "", keep_blank_values=True):
            values.setdefault(name, value)
        return values


class HttpResponse:
    """The reply the provider gets: ``HttpResponse().status(200).json({"success": True})``."""

    def __init__(self) -> None:
        self._status = 200
        self._headers: list = []
        self._body = b""

    def status(self, code: int) -> "HttpResponse":
        self._status = code
        return self

    def header(self, name: str, value: str) -> "HttpResponse":
        self._headers.append((str(name), str(value)))
        return self

    def content(self, body) -> "HttpResponse":
        """A string (sent as UTF-8) or bytes."""
        self._body = body.encode() if isinstance(body, str) else bytes(body)
        return self

    def json(self, value) -> "HttpResponse":
        """A JSON body with its content type."""
        return self.header("content-type", "application/json").content(json.dumps(value))


def _host():
    # The contract's bindings exist only inside a component (componentize-py makes them).
    from wit_world.imports import host

    return host


class _Settings:
    """The integration's settings, filled in by an admin."""

    def get(self, key: str) -> Optional[str]:
        return _host().get_setting(key)

    def require(self, key: str) -> str:
        """The setting ``key``; a ``ParseError.misconfigured`` when it is missing or empty."""
        value = self.get(key)
        if not value:
            raise ParseError.misconfigured(key)
        return value


class _Log:
    """The invocation log, which admins read; ``print`` writes to it too."""

    def _write(self, level: str, values) -> None:
        host = _host()
        host.log(getattr(host.LogLevel, level), " ".join(str(value) for value in values))

    def trace(self, *values) -> None:
        self._write("TRACE", values)

    def debug(self, *values) -> None:
        self._write("DEBUG", values)

    def info(self, *values) -> None:
        self._write("INFO", values)

    def warn(self, *values) -> None:
        self._write("WARN", values)

    def error(self, *values) -> None:
        self._write("ERROR", values)


settings = _Settings()
log = _Log()


def redact(secret: str) -> None:
    """Never show ``secret``, a value the request carries, in what the host keeps of it."""
    _host().redact(str(secret))


def verify_ed25519(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """An Ed25519 signature check done natively by the host."""
    return _host().verify_ed25519(bytes(public_key), bytes(message), bytes(signature))
