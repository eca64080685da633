"""Master data broken and mended as finance users do it (an ERP customer, account, item or
subsidiary made inactive, AR locked for a period, a revenue mapping withdrawn), and the
operator's replay of what the integration set aside."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import httpx
from pydantic import Field, model_validator

from harness.actors import StepFailed
from harness.exceptions import ExceptionsProbe
from harness.steps.fixtures import entity_id
from harness.steps.registry import CustomerName, EntityName, ProductName, StepKind, register

if TYPE_CHECKING:
    from harness.play import Run

_NO_MONEY = "it changes master data, not money: the fuzzer's lifecycles keep master data sound"


def _broken(run: Run, key: str, broken: bool) -> None:
    """Mark master data broken until a step mends it: gaps meanwhile are deferred."""
    if broken:
        run.broken.add(key)
    else:
        run.broken.discard(key)


# The invoice-line kinds of [links.erp_items]: `item: subscription` names whatever ERP item the
# integration under test declares for subscription lines.
_ITEM_KINDS = ("subscription", "other")


class ErpRecord(StepKind):
    """One ERP master record made (in)active: the ERP customer of a fixture customer, an
    account (by number), a service sale item, the subsidiary of a fixture entity, or a
    currency (by ISO code)."""

    customer: CustomerName | None = None
    account: str | None = Field(None, pattern=r"^\d{3,8}$", description="an account number")
    item: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,100}$",
        description="`subscription` or `other`: the ERP item `[links.erp_items]` declares for "
        "those invoice lines; or an ERP item's external id, e.g. `SERVICES`",
    )
    entity: EntityName | None = Field(None, description="the entity's ERP subsidiary")
    currency: str | None = Field(
        None, pattern=r"^[A-Za-z]{3}$", description="an ERP currency by ISO code, e.g. `eur`"
    )
    not_generated: ClassVar[str | None] = _NO_MONEY
    inactive: ClassVar[bool] = True

    @model_validator(mode="after")
    def _one(self) -> ErpRecord:
        named = [self.customer, self.account, self.item, self.entity, self.currency]
        if sum(x is not None for x in named) != 1:
            raise ValueError("name one of customer, account, item, entity or currency")
        return self

    def key(self) -> str:
        what, name = next(
            (w, n)
            for w, n in (
                ("customer", self.customer),
                ("account", self.account),
                ("item", self.item),
                ("subsidiary", self.entity),
                ("currency", self.currency and self.currency.upper()),
            )
            if n is not None
        )
        return f"erp {what} {name}"

    def execute(self, run: Run) -> str:
        kind, record_id = self._record(run)
        headers = None
        if kind in ("subsidiary", "currency"):
            # An administrator's change in NetSuite, made with the administrator's token.
            admin = str(run.actors.context["erp"]["admin_token"])
            headers = {"Authorization": f"Bearer {admin}"}
        run.actors.netsuite(
            "PATCH", f"/{kind}/{record_id}", {"isInactive": self.inactive}, headers=headers
        )
        _broken(run, self.key(), self.inactive)
        return f"{self.key()} ({kind}/{record_id}) {'inactive' if self.inactive else 'active'}"

    def _record(self, run: Run) -> tuple[str, str]:
        """The REST record type and internal id the step names."""
        books = run.snapshot()
        store = books.erp_store
        if self.customer is not None:
            found = books.links.target("erp.customer", run.stripe_customer(self.customer))
            if found is None:
                raise StepFailed(f"customer {self.customer} has no ERP customer yet")
            return "customer", str(found.id)
        if self.account is not None:
            accounts = [a for a in store.accounts.values() if a.number == self.account]
            if not accounts:
                raise StepFailed(f"the ERP chart of accounts has no account {self.account}")
            return "account", accounts[0].id
        if self.item is not None:
            eid = books.declared_item(self.item) if self.item in _ITEM_KINDS else self.item
            item = store.by_external_id("serviceSaleItem", eid)
            if item is None:
                raise StepFailed(f"the ERP has no service sale item {eid}")
            return "serviceSaleItem", str(item.id)
        if self.currency is not None:
            code = self.currency.upper()
            found = [c for c in store.currencies.values() if c.symbol.upper() == code]
            if not found:
                raise StepFailed(f"the ERP has no currency {code}")
            return "currency", str(found[0].id)
        eid = entity_id(str(self.entity))
        sub = store.by_external_id("subsidiary", eid)
        if sub is None:
            raise StepFailed(f"the ERP has no subsidiary {eid}")
        return "subsidiary", str(sub.id)


@register("erp.deactivate")
class ErpDeactivate(ErpRecord):
    """A finance user makes an ERP customer, account, item, subsidiary or currency inactive:
    postings that name it are refused."""


@register("erp.reactivate")
class ErpReactivate(ErpRecord):
    """A finance user makes the ERP record active again (the cause mended)."""

    inactive: ClassVar[bool] = False


class ArLock(StepKind):
    """AR locked (or unlocked) for an entity's accounting period."""

    entity: EntityName
    period: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")
    not_generated: ClassVar[str | None] = _NO_MONEY
    locked: ClassVar[bool] = True

    def execute(self, run: Run) -> str:
        eid = entity_id(self.entity)
        # NetSuite's own period record, with the administrator's token (Manage Accounting
        # Periods): the integration's role may not change periods.
        admin = str(run.actors.context["erp"]["admin_token"])
        run.actors.netsuite(
            "PATCH",
            f"/accountingPeriod/eid:{eid}-{self.period}",
            {"arLocked": self.locked},
            headers={"Authorization": f"Bearer {admin}"},
        )
        key = f"erp AR {eid} {self.period}"
        _broken(run, key, self.locked)
        return f"{key} {'locked' if self.locked else 'unlocked'}"


@register("erp.lock_ar")
class ErpLockAr(ArLock):
    """A finance user locks AR for the period (month-end): AR postings to it are refused."""


@register("erp.unlock_ar")
class ErpUnlockAr(ArLock):
    """A finance user unlocks AR for the period again."""

    locked: ClassVar[bool] = False


class RevenueMapping(StepKind):
    """A product's revenue mapping in the subledger withdrawn (or restored)."""

    product: ProductName
    not_generated: ClassVar[str | None] = _NO_MONEY
    mapped: ClassVar[bool] = False

    def execute(self, run: Run) -> str:
        product = run.names[f"product:{self.product}"]
        run.actors.call(
            "revrec", "PUT", f"/v1/revenue_mappings/{product}", json={"mapped": self.mapped}
        )
        key = f"revrec mapping {self.product}"
        _broken(run, key, not self.mapped)
        return f"{key} ({product}) {'mapped' if self.mapped else 'withdrawn'}"


@register("revrec.unmap")
class RevrecUnmap(RevenueMapping):
    """A product left without a revenue mapping (a new SKU finance has not set up): the
    subledger refuses contract lines for it."""


@register("revrec.map")
class RevrecMap(RevenueMapping):
    """Finance maps the product to a revenue rule and GL accounts (the cause mended)."""

    mapped: ClassVar[bool] = True


@register("integration.replay")
class IntegrationReplay(StepKind):
    """The operator replays what the integration set aside, through its declared replay
    action: every open item, or those whose source document or reason contains `match`."""

    match: str | None = Field(None, min_length=1, max_length=200)
    not_generated: ClassVar[str | None] = "an operator's action after mending master data"

    def execute(self, run: Run) -> str:
        run.replays.append(run.now())
        # What the stand-in set aside is the operator's too (it plays the rest of the flow).
        standin = run.session.standin
        also = ""
        kept = None if standin is None else standin.exceptions
        if standin is not None and standin.running and kept is not None and kept.replay_url:
            also = "; the stand-in's: " + self._replay(kept)
        process = run.session.integration
        probe = None if process is None else process.exceptions
        if probe is None or probe.replay_url is None:
            # Judged on the books alone: nothing to call, and the report says so.
            return "the integration declares no replay action: nothing replayed" + also
        return self._replay(probe) + also

    def _replay(self, probe: ExceptionsProbe) -> str:
        ids = None
        if self.match is not None:
            listed = probe.read()
            if listed.error is not None:
                raise StepFailed(listed.error)
            ids = [
                i.id
                for i in listed.open()
                if self.match in i.source.document or self.match in i.reason
            ]
            if not ids:
                return f"no open item matches {self.match!r}: nothing replayed"
        try:
            answer = probe.replay(ids)
        except (RuntimeError, httpx.HTTPError) as exc:
            raise StepFailed(str(exc)) from None
        what = "every open item" if ids is None else f"{len(ids)} item(s)"
        return f"replayed {what}: {answer}"
