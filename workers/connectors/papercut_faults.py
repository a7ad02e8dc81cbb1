"""What a PaperCut fault means, by its code, and how a PaperCut username is made from a userName.

Since PaperCut NG/MF 19.2 a Web Services fault carries a code from a published table (the
``WebServices Error Codes`` page of the ``PaperCutSoftware/PaperCutExamples`` wiki). The codes
this connector meets, and what becomes of them:

====  ======================================  ==============================================
code  PaperCut's meaning                      printsync
====  ======================================  ==============================================
257   general / unknown error                 a refusal; if a harmless call is refused too,
                                              the credentials are (``AuthenticationError``)
258   password cannot be blank                permanent
259   username cannot be blank                permanent
261   the property is invalid                 permanent
262   user cannot be found                    not found (revoke and delete: done)
263   group cannot be found                   not found
268   e-mail is not unique                    permanent
269   e-mail is not valid                     permanent
270   password only on internal users         permanent
271   PIN is invalid                          permanent (revoke clears the PIN on its own)
272   PIN is not unique                       permanent
273   PIN is too short                        permanent
====  ======================================  ==============================================

Any other code is permanent as well: retrying a refusal cannot help, and the outbox's dead effect
and the digest tell an operator. None of the table's codes is retryable; what is (HTTP 5xx,
timeouts, refused connections) never arrives as a fault.

A refused auth token and a refused caller address (``auth.webservices.auth-token``,
``auth.webservices.allowed-addresses``) have no code of their own, and the fault's text is not
documented. So the text is never read: a general fault is followed by one harmless call
(``isUserExists``) with the same token. If that is refused as well, nothing this connector sends
can succeed and the fault is an :class:`~workers.errors.AuthenticationError`; if it answers, the
first fault was about the call itself.

Usernames: an internal PaperCut username may not contain ``@``, ``/`` or ``\\`` and PaperCut keeps
every username in lower case, so a userName is mapped (:func:`map_username`): ``local-part``
takes the part before the first ``@``, ``upn`` keeps the whole userName (for sites whose PaperCut
users come from a directory sync of Azure AD under their UPN). Both are lower-cased.
"""

from __future__ import annotations

from typing import Final, Literal

from workers.errors import DownstreamError, NotFoundError, PermanentError

__all__ = [
    "GENERAL",
    "MEANINGS",
    "PIN_CODES",
    "UsernameMapping",
    "is_general",
    "map_username",
    "refusal",
]

UsernameMapping = Literal["local-part", "upn"]

GENERAL: Final = 257
USER_NOT_FOUND: Final = 262
GROUP_NOT_FOUND: Final = 263

#: The codes of the published table that this connector may meet, and what they mean.
MEANINGS: Final[dict[int, str]] = {
    257: "general error",
    258: "password cannot be blank",
    259: "username cannot be blank",
    260: "property name cannot be blank",
    261: "the property is invalid",
    262: "user cannot be found",
    263: "group cannot be found",
    267: "user alias is not unique",
    268: "e-mail is not unique",
    269: "e-mail is not valid",
    270: "a password can only be set on internal users",
    271: "PIN is invalid",
    272: "PIN is not unique",
    273: "PIN is too short",
}

#: Refusals of a card PIN.
PIN_CODES: Final = frozenset({271, 272, 273})

_NOT_FOUND: Final = frozenset({USER_NOT_FOUND, GROUP_NOT_FOUND})


def is_general(code: int) -> bool:
    """Whether a fault code says nothing specific: 257, or a code outside the table (servers
    before 19.2 answer without the table's codes)."""
    return code == GENERAL or code not in MEANINGS


def refusal(method: str, code: int, detail: str) -> DownstreamError:
    """The error for a fault ``code`` that is not about the credentials; ``detail`` is the
    fault's text, cleaned for a message."""
    meaning = MEANINGS.get(code, "undocumented fault code")
    text = f"PaperCut refused the call (fault {code}, {meaning}: {detail})"
    if code in _NOT_FOUND:
        return NotFoundError(text, operation=method)
    return PermanentError(text, operation=method)


def map_username(user_name: str, mapping: UsernameMapping) -> str:
    """The PaperCut username of a userName: its local part, or all of it, in lower case."""
    name = user_name.strip()
    if mapping == "local-part":
        name = name.split("@", 1)[0]
    return name.lower()
