"""A PUT or PATCH never loses another write, on either database.

On PostgreSQL a PATCH that touches neither memberships nor ``active`` reads the row without a
lock and writes it with one statement that checks the version it read
(``storage.resources.rewrite``); these tests make another write land between that read and that
write, and run many PATCHes of one user at once.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson

from storage import resources, tenants, users
from storage.database import open_database
from tests import builders
from tests.conftest import count_rows

BASE = "https://printsync.example/scim/v2/acme"
ATTRIBUTES = ("title", "nickName", "displayName", "locale", "preferredLanguage", "timezone")


async def _user(db: Any) -> tuple[int, str]:
    tenant, _token = await tenants.create(db, "acme", connector="ledger")
    stored = await resources.create(
        db, users.SPEC, tenant.id, builders.print_user("ada@example.com"), base=BASE
    )
    return tenant.id, stored.id


def _replace(path: str, value: str) -> resources.Edit:
    return resources.patching(users.SPEC, builders.patch_body(builders.replace(path, value)))


def test_patches_of_one_user_at_once_all_land_each_with_its_effect(database_url: str) -> None:
    async def scenario() -> dict[str, Any]:
        db = await open_database(database_url)
        try:
            tenant_id, user_id = await _user(db)
            await asyncio.gather(
                *(
                    resources.rewrite(
                        db, users.SPEC, tenant_id, user_id, _replace(name, f"{name}-x"), base=BASE
                    )
                    for name in ATTRIBUTES
                )
            )
            got = await resources.rewrite(
                db, users.SPEC, tenant_id, user_id, _replace("title", "title-x"), base=BASE
            )
            return {"version": got.version, "doc": orjson.loads(got.doc)}
        finally:
            await db.close()

    result = asyncio.run(scenario())
    assert {name: result["doc"][name] for name in ATTRIBUTES} == {
        name: f"{name}-x" for name in ATTRIBUTES
    }
    assert result["version"] == 1 + len(ATTRIBUTES)  # the last PATCH changed nothing
    assert result["doc"]["meta"]["version"] == f'W/"{result["version"]}"'
    # One effect per version: the create's and each PATCH's.
    assert count_rows(database_url, "outbox") == 1 + len(ATTRIBUTES)


def test_a_write_between_the_read_and_the_write_is_kept_and_the_edit_applied_again(
    postgres_url: str,
) -> None:
    calls: list[int] = []

    async def scenario() -> dict[str, Any]:
        db = await open_database(postgres_url)
        try:
            tenant_id, user_id = await _user(db)
            inner = _replace("title", "Engineer")
            outer = _replace("nickName", "ada")

            def other_write() -> None:
                # Another request's PATCH, on its own connection, while this one holds the row
                # it read and has not written yet.
                async def write() -> None:
                    other = await open_database(postgres_url, pool_size=1)
                    try:
                        await resources.rewrite(
                            other, users.SPEC, tenant_id, user_id, inner, base=BASE
                        )
                    finally:
                        await other.close()

                asyncio.run(write())

            def racing(old: str) -> Any:
                calls.append(1)
                if len(calls) == 1:
                    thread = threading.Thread(target=other_write)
                    thread.start()
                    thread.join()
                return outer(old)

            got = await resources.rewrite(db, users.SPEC, tenant_id, user_id, racing, base=BASE)
            return {"version": got.version, "doc": orjson.loads(got.doc)}
        finally:
            await db.close()

    result = asyncio.run(scenario())
    assert len(calls) == 2  # read again after losing the race, edit applied again
    assert result["doc"]["title"] == "Engineer"
    assert result["doc"]["nickName"] == "ada"
    assert result["version"] == 3
    assert count_rows(postgres_url, "outbox") == 3  # create, the other PATCH, this one
