"""TEMPORARY (uncommitted): the adversarial step kinds in the old step structure, for testing."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from harness import forgery
from harness import scenario as sc
from harness.actors import StepFailed
from harness.steps import executor


class TmpForge(sc._Strict, forgery.ForgeWebhook):
    pass


class VoidInvoice(sc._Strict):
    model_config = ConfigDict(extra="forbid")
    customer: str


class Reopen(sc._Strict):
    model_config = ConfigDict(extra="forbid")
    opportunity: str
    stage: str = "Negotiation/Review"


sc.STEPS["webhook.forge"] = TmpForge  # type: ignore[assignment]
sc.STEPS["billing.void_invoice"] = VoidInvoice  # type: ignore[assignment]
sc.STEPS["crm.reopen"] = Reopen  # type: ignore[assignment]


@executor("webhook.forge")
def forge(run: Any, p: forgery.ForgeWebhook) -> str:
    return forgery.forge(run, p)


@executor("billing.void_invoice")
def void_invoice(run: Any, p: VoidInvoice) -> str:
    customer = run.stripe_customer(p.customer)
    listed = run.actors.stripe("GET", "/v1/invoices", params={"customer": customer, "status": "open", "limit": 1})
    if not listed["data"]:
        raise StepFailed(f"{p.customer} has no open invoice to void")
    invoice = listed["data"][0]["id"]
    run.actors.stripe("POST", f"/v1/invoices/{invoice}/void")
    return f"voided {invoice}"


@executor("crm.reopen")
def reopen(run: Any, p: Reopen) -> str:
    opportunity = run.names[f"opportunity:{p.opportunity}"]
    run.actors.salesforce("PATCH", f"/sobjects/Opportunity/{opportunity}", {"StageName": p.stage})
    if p.opportunity in run.won:
        run.won.remove(p.opportunity)
    return f"Opportunity {opportunity} back to {p.stage}"
