"""SCIM responses: the media type, ETag and Location, and list bodies built from stored bytes."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import Response

from storage.documents import etag
from storage.scim.schema import LIST_RESPONSE

MEDIA_TYPE = "application/scim+json"
_LIST_HEAD = (
    '{"schemas":["' + LIST_RESPONSE + '"],"totalResults":%d,"itemsPerPage":%d,'
    '"startIndex":%d,"Resources":['
)


class ScimResponse(Response):
    media_type = MEDIA_TYPE


def resource(
    body: str | bytes, *, version: int | None = None, status: int = 200, location: str | None = None
) -> ScimResponse:
    headers: dict[str, str] = {}
    if version is not None:
        headers["ETag"] = etag(version)
    if location is not None:
        headers["Location"] = location
    return ScimResponse(body, status_code=status, headers=headers)


def listing(total: int, start_index: int, docs: Sequence[str]) -> ScimResponse:
    body = (_LIST_HEAD % (total, len(docs), start_index)) + ",".join(docs) + "]}"
    return ScimResponse(body.encode())


def empty(status: int = 204, version: int | None = None) -> Response:
    headers = {"ETag": etag(version)} if version is not None else None
    return Response(status_code=status, headers=headers)
