"""Webhook authenticity: a push the integration cannot verify is refused and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

from harness.books import Books
from harness.invariants.registry import invariant
from harness.violations import Violation


@invariant("INV-34", group="delivery")
def forged_pushes_change_nothing(books: Books) -> Iterator[Violation]:
    """*(ours, beyond the catalogue)* A push the integration cannot have authenticated — no
    signature, a signature made with another secret, or a timestamp past the vendor's 300 s
    tolerance — is refused, never acknowledged with a 2xx; and no forged push, nor a genuine
    one replayed, changes anything: every document the integration writes (ERP, subledger,
    billing, CRM write-backs) is as it was before the push. Judged on the pushes the harness
    forged (``webhook.forge``); anyone who can reach a receiver can send them."""
    for push in books.forged:
        if push.acknowledged and not push.authentic:
            yield Violation(
                "INV-34",
                f"a {push.kind.replace('_', ' ')} {push.event_type} push ({push.event_id}) to "
                f"{push.url} was acknowledged with {push.status}: the integration cannot have "
                "verified it",
                (push.ref,),
                {"kind": push.kind, "status": push.status, "url": push.url},
            )
        if push.changed:
            yield Violation(
                "INV-34",
                f"a {push.kind.replace('_', ' ')} {push.event_type} push ({push.event_id}) "
                f"changed {len(push.changed)} record(s)",
                (push.ref, *push.changed),
                {"kind": push.kind, "changed": list(push.changed)},
            )
