"""What a write changed (storage.changes) and an entry in plain words (provisioning_log.story)."""

from __future__ import annotations

from storage import outbox
from storage.changes import Changes, Member, active_change, diff
from storage.provisioning_log import Entry, describe, effect_changes

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def entry(operation: str, result: str = "success", **fields: object) -> Entry:
    values: dict[str, object] = {
        "time": "2026-01-02T03:04:05.000000Z",
        "tenant_id": 1,
        "source": "scim",
        "operation": operation,
        "result": result,
    }
    values.update(fields)
    return Entry(**values)  # type: ignore[arg-type]


def test_diff_names_changed_attributes_one_level_down_without_values() -> None:
    old = {
        "userName": "ada",
        "name": {"givenName": "Ada", "familyName": "L"},
        "emails": [{"value": "a@x"}],
        ENTERPRISE: {"department": "R&D", "employeeNumber": "7"},
        "active": True,
    }
    new = {
        "userName": "ada",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": "b@x"}],
        ENTERPRISE: {"department": "Sales", "employeeNumber": "7"},
        "active": False,
        "title": "Countess",
    }
    assert diff(old, new) == ("emails", "name.familyName", "title", "department")


def test_active_change_tells_disabled_from_reenabled_and_ignores_absent_as_active() -> None:
    assert active_change({"active": True}, {"active": False}) == (True, False)
    assert active_change({"active": False}, {"active": True}) == (False, True)
    assert active_change({}, {"active": True}) is None
    assert active_change({}, {"active": False}) == (None, False)
    assert active_change(None, {"active": False}) == (None, False)
    assert active_change(None, {"active": True}) is None


def test_changes_detail_keeps_names_counts_and_active_only() -> None:
    changes = Changes(
        name="Sales",
        attributes=("displayName",),
        added=(Member("u1", "ada"), Member("u2", None)),
        removed=(Member("u3", "bob"),),
        rewrite=True,
    )
    assert changes.detail() == {
        "attributes": ["displayName"],
        "added": 2,
        "added_names": ["ada", "u2"],
        "removed": 1,
        "removed_names": ["bob"],
    }
    assert Changes(name="x").detail() is None
    assert Changes(name="x", rewrite=True).detail() == {"attributes": []}
    assert changes.member_details("g1") == [
        (Member("u1", "ada"), {"membership": "added", "group": {"id": "g1", "name": "Sales"}}),
        (Member("u2", None), {"membership": "added", "group": {"id": "g1", "name": "Sales"}}),
        (Member("u3", "bob"), {"membership": "removed", "group": {"id": "g1", "name": "Sales"}}),
    ]


def test_effect_changes_read_version_and_group_from_the_key() -> None:
    assert effect_changes("account.sync:u1:v1") == {"version": 1}
    assert effect_changes("account.sync:u1:gG1:v4", "ensured") == {
        "version": 4,
        "group": "G1",
        "account": "ensured",
    }
    # A purge key ends in the effect id and holds a userName, which may look like anything.
    assert effect_changes("account.purge:u1:vgary@x.example:e12") is None


def test_describe_tells_a_users_story_in_plain_words() -> None:
    words = [
        describe(entry("POST /Users", changes=None)).text(),
        describe(entry("POST /Users", changes={"active": [None, False]})).text(),
        describe(entry("PATCH /Users", changes={"attributes": [], "active": [True, False]})).text(),
        describe(
            entry("PUT /Users", changes={"attributes": ["displayName"], "active": [False, True]})
        ).text(),
        describe(entry("PATCH /Users", changes={"attributes": []})).text(),
        describe(entry("PATCH /Users")).text(),
        describe(entry("DELETE /Users", changes={"groups": ["Sales"]})).text(),
        describe(
            entry(
                "PATCH /Groups",
                source="group",
                changes={"membership": "added", "group": {"id": "g", "name": "Sales"}},
            )
        ).text(),
        describe(
            entry(
                "DELETE /Groups",
                source="group",
                changes={"membership": "removed", "group": {"id": "g", "name": "Sales"}},
            )
        ).text(),
        describe(
            entry("POST /Users", "client_error", status=409, error="userName is already taken")
        ).text(),
        describe(entry("PATCH /Users", "server_error", status=503, error="try later")).text(),
        describe(entry("GET /Users", target_id="u1")).text(),
    ]
    assert words == [
        "created",
        "created inactive",
        "disabled (active: true -> false)",
        "re-enabled, updated displayName (active: false -> true)",
        "no change",
        "updated",
        "deleted (left Sales)",
        "added to group Sales",
        "removed from group Sales",
        "create refused (409: userName is already taken)",
        "update failed (503: try later)",
        "read by Entra",
    ]


def test_describe_tells_what_the_worker_did_to_the_print_account() -> None:
    def effect(kind: str, result: str = "success", **changes: object) -> str:
        return describe(
            entry(kind, result, source="effect", changes=changes or None, error="refused")
        ).text()

    assert effect(outbox.ACCOUNT_SYNC, version=1, account="ensured") == "print account created"
    assert effect(outbox.ACCOUNT_SYNC, version=3, account="ensured") == "print account updated"
    assert (
        effect(outbox.ACCOUNT_SYNC, version=3, group="g", account="ensured")
        == "print account's groups brought in line"
    )
    assert (
        effect(outbox.ACCOUNT_SYNC, version=2, account="revoked")
        == "access revoked (inactive in Entra)"
    )
    assert effect(outbox.ACCOUNT_DELETE) == "access revoked (deleted in Entra)"
    assert effect(outbox.ACCOUNT_PURGE) == "print account deleted and personal data redacted"
    assert (
        effect(outbox.ACCOUNT_SYNC, "retried")
        == "print account update failed, will retry (refused)"
    )
    assert (
        effect(outbox.ACCOUNT_SYNC, "dead")
        == "print account update gave up after retries (refused)"
    )
    assert effect(outbox.ACCOUNT_DELETE, "failed") == "access revocation failed (refused)"


def test_group_entry_names_members_added_and_removed() -> None:
    event = describe(
        entry(
            "PATCH /Groups",
            changes={
                "attributes": [],
                "added": 7,
                "added_names": ["a", "b", "c", "d", "e", "f", "g"],
                "removed": 1,
                "removed_names": ["z"],
            },
        )
    )
    assert event.text() == "7 members added: a, b, c, d, e and 2 more, 1 member removed: z"
