"""SCIM responses: the media type, ETag and Location, and list bodies built from stored bytes."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import Response

from storage.documents import etag
from storage.paging import Page
from storage.scim.schema import LIST_RESPONSE

MEDIA_TYPE = "application/scim+json"
_LIST_HEAD = '{"schemas":["' + LIST_RESPONSE + '"],"totalResults":%d,"itemsPerPage":%d,'


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
    """A ListResponse of an index page (or of a list that is never paged)."""
    body = (_LIST_HEAD % (total, len(docs))) + f'"startIndex":{start_index},"Resources":['
    return ScimResponse((body + ",".join(docs) + "]}").encode())


def page(found: Page, docs: Sequence[str]) -> ScimResponse:
    """The ListResponse of a page whose documents, projected, are ``docs``: an index page has
    its ``startIndex``; a cursor page (RFC 9865) has none, and ``nextCursor`` unless it is the
    last page, ``previousCursor`` when there is one (the cursors are base64url text)."""
    if found.start_index is not None:
        return listing(found.total, found.start_index, docs)
    body = _LIST_HEAD % (found.total, len(docs))
    if found.next_cursor is not None:
        body += f'"nextCursor":"{found.next_cursor}",'
    if found.previous_cursor is not None:
        body += f'"previousCursor":"{found.previous_cursor}",'
    return ScimResponse((body + '"Resources":[' + ",".join(docs) + "]}").encode())


def empty(status: int = 204, version: int | None = None) -> Response:
    headers = {"ETag": etag(version)} if version is not None else None
    return Response(status_code=status, headers=headers)
