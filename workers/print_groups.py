"""A ``group.sync`` effect against a print system that adds groups in the background, or cannot
hold every group.

PaperCut adds only groups of its user directory source, and adds them in a background task. The
connector waits for that task briefly; if it is still running (:class:`GroupPending`) the effect
completes with a follow-up ``group.sync`` due a little later (``{"waits": n}`` in its payload),
so no worker thread is held and no retry is counted. After :data:`MAX_WAITS` looks, or when the
task ended without the group (:class:`GroupUnavailable`), the group is **skipped**: the reason is
recorded (``storage.reconcile.mark_skipped``, shown by ``printsync tenant status``) and in the
provisioning log, and the effect is done. Members' account effects leave out groups the print
system does not have, so a skipped group causes no dead effect, no retries and no mail.

Once the group is there, its members whose accounts exist are added to it (their account
effects may have run before the group existed) and a former skip is forgotten.
"""

from __future__ import annotations

from typing import Any

from storage import clock, outbox
from workers.connectors.interface import GroupUnavailable

#: How many times a group.sync looks again for a group the print system is still adding.
MAX_WAITS = 8
#: Seconds before the first look again; doubled each time, up to :data:`MAX_WAIT_SECONDS`.
FIRST_WAIT_SECONDS = 5.0
MAX_WAIT_SECONDS = 300.0


def waits(effect: outbox.Effect) -> int:
    value = effect.payload.get("waits", 0)
    return value if isinstance(value, int) and value >= 0 else 0


def look_again(effect: outbox.Effect) -> outbox.Scheduled:
    """The follow-up ``group.sync`` that looks for the group again a little later; raises
    :class:`GroupUnavailable` once the print system has had long enough."""
    done = waits(effect)
    if done >= MAX_WAITS:
        raise GroupUnavailable(f"the print system did not finish adding it after {done} looks")
    delay = min(FIRST_WAIT_SECONDS * 2**done, MAX_WAIT_SECONDS)
    payload: dict[str, Any] = {**effect.payload, "waits": done + 1}
    return outbox.Scheduled(
        kind=outbox.GROUP_SYNC,
        subject_id=effect.subject_id,
        key=f"{outbox.GROUP_SYNC}:{effect.subject_id}:w{effect.id}",
        payload=payload,
        due_at=clock.later(delay),
    )


def waiting(effect: outbox.Effect) -> dict[str, Any]:
    """The log details of an effect that waits for the print system."""
    return {"waiting": waits(effect) + 1}


__all__ = ["FIRST_WAIT_SECONDS", "MAX_WAITS", "look_again", "waiting", "waits"]
