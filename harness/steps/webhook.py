"""Webhook steps: the harness as an attacker on the integration's receivers (harness.forgery)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from harness import forgery
from harness.steps.registry import (
    Chooser,
    Context,
    Lifecycle,
    OpportunityName,
    Problem,
    StepKind,
    register,
)

if TYPE_CHECKING:
    from harness.play import Run


@register("webhook.forge")
class Forge(StepKind):
    """A push the integration must not trust, or must not apply twice, sent to each of its
    receivers for `system`: a genuine event with a new id, unsigned, signed with another secret
    or an hour stale, or a genuine event replayed as is, freshly signed. Judged by INV-34 (it
    is refused, and the books do not change)."""

    system: Literal["billing", "crm", "revrec"]
    kind: forgery.ForgeKind
    event: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="billing, revrec: the event type whose latest genuine event is copied",
    )
    opportunity: OpportunityName | None = Field(
        None, description="crm: the opportunity the push claims closed"
    )

    @model_validator(mode="after")
    def _crm(self) -> Forge:
        if self.system == "crm":
            if self.opportunity is None:
                raise ValueError("a forged CRM push names the opportunity it claims closed")
            if self.kind == "replayed":
                raise ValueError("the CRM keeps no copy of what it pushed: nothing to replay")
            if self.event not in (None, forgery.CRM_EVENT):
                raise ValueError(f"the CRM pushes {forgery.CRM_EVENT} only")
        elif self.opportunity is not None:
            raise ValueError("only a CRM push names an opportunity")
        elif self.event is None:
            raise ValueError(f"name the {self.system} event type to copy, e.g. invoice.paid")
        return self

    @property
    def event_type(self) -> str:
        return self.event or forgery.CRM_EVENT

    def execute(self, run: Run) -> str:
        return forgery.forge(run, self)

    def check(self, ctx: Context) -> Iterator[Problem]:
        # INV-34 takes every change after the push for its doing: with a fault window on, the
        # integration's own retries of earlier work would change the books meanwhile.
        if ctx.faults:
            on = ", ".join(sorted(ctx.faults))
            yield Problem(
                ("kind",),
                f"forge a push with no fault window on ({on} is): what the integration's retries "
                "change meanwhile would be taken for the forgery's doing",
            )

    @classmethod
    def generate(cls, c: Chooser, life: Lifecycle) -> dict[str, Any] | None:
        if life.ctx.faults:
            return None  # see check
        # Billing has sent invoice.finalized once an invoice is owed or was finalised.
        billed = life.owing(c) is not None or life.creditable(c) is not None
        won = life.deal(c, crm=True)
        systems = (["billing"] if billed else []) + (["crm"] if won else [])
        if not systems:
            return None
        if c.pick(systems) == "billing":
            kind = c.pick(["unsigned", "wrong_secret", "stale", "replayed"])
            return {"system": "billing", "kind": kind, "event": "invoice.finalized"}
        kind = c.pick(["unsigned", "wrong_secret", "stale"])
        return {"system": "crm", "kind": kind, "opportunity": won}
