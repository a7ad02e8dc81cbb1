"""The table of indexed attributes agrees with the tables of record, and the filter compiler
reads its columns."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from storage import indexed, records, sql_filters
from storage.scim.schema import GROUP_TYPE, USER_TYPE

TABLES = {"User": records.users, "Group": records.groups}
# Columns the engine or the workers keep that hold no SCIM attribute.
UNINDEXED = {
    "User": {"pk", "tenant_id", "version", "doc", "print_username"},
    "Group": {"pk", "tenant_id", "version", "doc", "member_count"},
}


def _unique_columns(table: sa.Table) -> dict[str, str]:
    """The column of each per-tenant unique constraint, with the constraint's name."""
    found: dict[str, str] = {}
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            names = [column.name for column in constraint.columns]
            if len(names) == 2 and names[0] == "tenant_id":
                found[names[1]] = str(constraint.name)
    return found


@pytest.mark.parametrize("resource", ["User", "Group"])
def test_indexed_columns_exist_in_the_records_table(resource: str) -> None:
    table = TABLES[resource]
    columns = [entry.column for entry in indexed.INDEXED if entry.resource == resource]
    assert columns
    assert set(columns) <= set(table.c.keys())


@pytest.mark.parametrize("resource", ["User", "Group"])
def test_every_column_of_the_records_table_is_indexed_or_kept_by_the_engine(
    resource: str,
) -> None:
    columns = {entry.column for entry in indexed.INDEXED if entry.resource == resource}
    assert set(TABLES[resource].c.keys()) == columns | UNINDEXED[resource]


@pytest.mark.parametrize("resource", ["User", "Group"])
def test_unique_entries_have_their_unique_constraint_and_only_they(resource: str) -> None:
    unique = {
        entry.column
        for entry in indexed.INDEXED
        if entry.resource == resource and entry.unique is not None
    }
    assert unique
    assert set(_unique_columns(TABLES[resource])) == unique


@pytest.mark.parametrize("resource", ["User", "Group"])
def test_uniqueness_detail_names_the_attribute_on_both_databases(resource: str) -> None:
    table = TABLES[resource]
    for column, constraint in _unique_columns(table).items():
        (entry,) = [e for e in indexed.INDEXED if e.resource == resource and e.column == column]
        sqlite = f"UNIQUE constraint failed: {table.name}.tenant_id, {table.name}.{column}"
        postgresql = f'duplicate key value violates unique constraint "{constraint}"'
        assert indexed.uniqueness_detail(sqlite) == entry.unique
        assert indexed.uniqueness_detail(postgresql) == entry.unique


def test_uniqueness_detail_of_another_constraint_is_generic() -> None:
    detail = indexed.uniqueness_detail("UNIQUE constraint failed: users.id")
    assert detail == "a resource with the same unique attribute already exists"


@pytest.mark.parametrize("resource", ["User", "Group"])
def test_derived_columns_are_the_columns_derived_from_a_document(resource: str) -> None:
    doc = {"schemas": [], "userName": "Ada", "displayName": "Ada", "externalId": "e"}
    derived = indexed.derived_columns(resource)
    assert tuple(indexed.columns(resource, doc)) == derived
    kept = {"id", "created_at", "last_modified"}
    assert not kept & set(derived)


def test_lowered_columns_hold_lower_case_values() -> None:
    doc = {
        "userName": "Ada@Example.COM",
        "displayName": "Print Admins",
        "emails": [{"type": "work", "value": "Ada@Example.COM"}],
    }
    for resource in ("User", "Group"):
        values = indexed.columns(resource, doc)
        for entry in indexed.INDEXED:
            if entry.resource == resource and entry.lowered and entry.derive is not None:
                assert values[entry.column] == str(values[entry.column]).lower()


@pytest.mark.parametrize(
    ("resource", "text", "column"),
    [
        ("User", 'userName eq "Ada@Example.com"', "u.user_name_ci"),
        ("User", 'externalId eq "x"', "u.external_id"),
        ("User", 'emails[type eq "work" and value eq "a@b.c"]', "u.work_email_ci"),
        ("User", 'meta.lastModified gt "2026-01-01T00:00:00Z"', "u.last_modified"),
        ("Group", 'displayName eq "Printers"', "g.display_name_ci"),
    ],
)
def test_filters_on_indexed_attributes_compile_to_their_columns(
    resource: str, text: str, column: str
) -> None:
    resource_type = USER_TYPE if resource == "User" else GROUP_TYPE
    for dialect in ("sqlite", "postgresql"):
        compiled = sql_filters.compile_filter(text, resource_type, dialect)
        assert column in compiled.sql
        assert ".doc" not in compiled.sql
