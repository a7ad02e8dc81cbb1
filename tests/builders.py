"""Request bodies, messages and command lines that many tests build: one builder per concept.

A test that needs a body of its own (Entra's exact payloads, a user carrying secrets) keeps
it beside its assertions; what several modules build alike lives here.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from hypothesis import strategies as st

from storage.scim.schema import PATCH_OP, PRINTSYNC_USER, USER


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    """A SCIM PatchOp message carrying ``operations`` in order."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def replace(path: str, value: Any) -> dict[str, Any]:
    """One PATCH operation that replaces ``path`` with ``value``."""
    return {"op": "replace", "path": path, "value": value}


def members(op: str, *user_ids: str) -> dict[str, Any]:
    """A PATCH message that adds or removes (``op``, in any case) members of a group."""
    value = [{"value": user_id} for user_id in user_ids]
    return patch_body({"op": op, "path": "members", "value": value})


def print_user(
    user_name: str = "jdoe@example.com",
    card: str = "100200",
    **extra: Any,
) -> dict[str, Any]:
    """An active user with the print extension (a card, an office), its work e-mail address
    its userName: what the pipeline turns into a print account."""
    body: dict[str, Any] = {
        "schemas": [USER, PRINTSYNC_USER],
        "userName": user_name,
        "active": True,
        "displayName": user_name.split("@")[0],
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        PRINTSYNC_USER: {"cardNumber": card, "office": "Berlin"},
    }
    body.update(extra)
    return body


def papercut_tenant(name: str, url: str, token_env: str, *extra: str) -> list[str]:
    """The arguments of ``printsync tenant create`` for a PaperCut tenant ``name`` at ``url``
    whose auth token is in the variable ``token_env``; ``extra`` options follow them."""
    return [
        "tenant",
        "create",
        name,
        "--connector",
        "papercut",
        "--papercut-url",
        url,
        "--papercut-token-env",
        token_env,
        *extra,
    ]


def mail_text(message: EmailMessage) -> str:
    """The plain-text part of a mail."""
    part = message.get_body(("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def json_values(*, text: int, key: int, width: int, leaves: int) -> st.SearchStrategy[Any]:
    """Any JSON value: strings of up to ``text`` characters, arrays and objects (keys of up to
    ``key`` characters) of up to ``width`` items, ``leaves`` scalars at most."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    return st.recursive(
        scalars | st.text(max_size=text),
        lambda children: (
            st.lists(children, max_size=width)
            | st.dictionaries(st.text(max_size=key), children, max_size=width)
        ),
        max_leaves=leaves,
    )
