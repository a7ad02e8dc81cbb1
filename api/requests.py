"""Reading SCIM requests: bodies, media types and list parameters."""

from __future__ import annotations

import re
from typing import Any, Final

import orjson
from starlette.requests import Request

from api.errors import UnsupportedMediaType
from storage.paging import ListQuery
from storage.scim import messages
from storage.scim.errors import InvalidSyntax, InvalidValue
from storage.scim.schema import SEARCH_REQUEST

_INT64 = 2**63 - 1


#: The media types a body may be sent as (RFC 7644 §3.1; application/json is tolerated).
JSON_MEDIA_TYPES: Final = frozenset({"application/scim+json", "application/json"})
_UTF8: Final = frozenset({"utf-8", "utf8"})
_QUOTE: Final = b'"'
_QUOTE_ESCAPE: Final = b"\\u0022"


def check_media_type(content_type: str | None) -> None:
    """415 unless ``content_type`` is absent or names one of :data:`JSON_MEDIA_TYPES` (in any
    case, with parameters; a ``charset`` must be UTF-8)."""
    if content_type is None:
        return
    media, _, parameters = content_type.partition(";")
    if media.strip().lower() not in JSON_MEDIA_TYPES:
        raise UnsupportedMediaType("send the body as application/scim+json or application/json")
    if parameters:
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset" and value.strip(' "').lower() not in _UTF8:
                raise UnsupportedMediaType("send the body encoded as UTF-8")


async def json_body(request: Request) -> Any:
    """The parsed JSON body; 415 for a media type other than application/scim+json or
    application/json, 400 invalidSyntax for malformed JSON, invalid UTF-8 or a key repeated in
    one object, 400 invalidValue for a string holding NUL (no database column can store it).
    Receiving a body over ``max_body_bytes`` raises 413 (api.middleware limits it), after the
    media type is checked."""
    check_media_type(request.headers.get("content-type"))
    raw = await request.body()
    if not raw.strip():
        raise InvalidSyntax("the request body is empty")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidSyntax(f"the body is not valid JSON: {error.msg}") from None
    if isinstance(body, dict | list) and _repeats_a_key(raw, body):
        raise InvalidSyntax("the body repeats a key in one object")
    if b"\\u0000" in raw and _holds_nul(body):
        raise InvalidValue("the body holds a NUL character (\\u0000) in a string")
    return body


def _repeats_a_key(raw: bytes, body: Any) -> bool:
    """Whether an object anywhere in the JSON text ``raw`` (parsed as ``body``) has a key twice.

    orjson keeps the last of repeated keys silently. Serialising ``body`` again loses every
    repeated key's string, and with it two quote bytes; a quote inside a string is one quote byte
    in both (``\\"``), unless the text spells it ``\\u0022``. Without that escape the two texts
    hold as many quotes exactly when no key repeats, which costs a serialisation and two byte
    counts. A text with the escape, or nested deeper than orjson serialises, has its keys
    counted instead: the strings followed by a colon in the text against the keys of the parsed
    objects.
    """
    if _QUOTE_ESCAPE not in raw:
        try:
            return raw.count(_QUOTE) != orjson.dumps(body).count(_QUOTE)
        except orjson.JSONEncodeError:
            pass  # nested too deep to serialise again
    written = sum(1 for match in _STRING.finditer(raw) if match.group(1))
    return written != _keys(body)


#: A JSON string, and the colon after it when it is a key. Matched from left to right over a
#: valid JSON text, every match starts at a string's opening quote.
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"[ \t\r\n]*(:)?')


def _keys(value: Any) -> int:
    """How many keys the objects in a parsed JSON document hold together."""
    count = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            count += len(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


def _holds_nul(value: Any) -> bool:
    """Whether any string (key or value) in a parsed JSON document contains NUL."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _bounded(value: int) -> int:
    """Paging integers clamped to 64 bits: past that no page exists anyway."""
    return max(-_INT64, min(value, _INT64))


def _integer(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return _bounded(int(raw))
    except ValueError:
        raise InvalidValue(f"{name} must be an integer") from None


def _order(raw: str | None) -> str:
    if raw is None or raw == "":
        return "ascending"
    lowered = raw.lower()
    if lowered not in ("ascending", "descending"):
        raise InvalidValue("sortOrder must be ascending or descending")
    return lowered


def _paging(start: int | None, cursor: object) -> tuple[int, str | None]:
    """startIndex and the RFC 9865 cursor (present, even empty: paging by cursor), which
    exclude each other."""
    if cursor is None:
        return (1 if start is None else start), None
    if not isinstance(cursor, str):
        raise InvalidValue("cursor must be a string")
    if start is not None:
        raise InvalidValue(
            "send startIndex (paging by index) or cursor (paging by cursor), not both"
        )
    return 1, cursor


def list_query(params: dict[str, str]) -> ListQuery:
    """List parameters from a query string (keys are case-insensitive)."""
    lowered = {key.lower(): value for key, value in params.items()}
    filter_text = lowered.get("filter")
    start, cursor = _paging(
        _integer(lowered.get("startindex"), "startIndex"), lowered.get("cursor")
    )
    return ListQuery(
        filter=filter_text if filter_text not in (None, "") else None,
        start_index=start,
        count=_integer(lowered.get("count"), "count"),
        sort_by=lowered.get("sortby") or None,
        sort_order=_order(lowered.get("sortorder")),  # type: ignore[arg-type]
        cursor=cursor,
    )


def search_query(body: Any) -> tuple[ListQuery, str | None, str | None]:
    """A POST /.search body: the list query and the raw attributes/excludedAttributes."""
    lowered = messages.attributes(body, SEARCH_REQUEST, "SearchRequest")

    def text(name: str) -> str | None:
        value = lowered.get(name.lower())
        if value is None:
            return None
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return ",".join(value)
        if not isinstance(value, str):
            raise InvalidValue(f"{name} must be a string")
        return value

    def number(name: str) -> int | None:
        value = lowered.get(name.lower())
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValue(f"{name} must be an integer")
        return _bounded(value)

    start, cursor = _paging(number("startIndex"), lowered.get("cursor"))
    query = ListQuery(
        filter=text("filter") or None,
        start_index=start,
        count=number("count"),
        sort_by=text("sortBy") or None,
        sort_order=_order(text("sortOrder")),  # type: ignore[arg-type]
        cursor=cursor,
    )
    return query, text("attributes"), text("excludedAttributes")
