"""Books built by hand for the load checks, and harness.toml's integration for load runs."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.books import Books
from harness.config import HarnessConfig, load_config
from simulators.billing import models as bm
from simulators.billing.store import BillingStore
from simulators.crm.store import CrmStore
from simulators.erp import models as em
from simulators.erp.store import ErpStore
from simulators.revrec.store import RevrecStore

REPO = Path(__file__).resolve().parents[2]


def invoice(invoice_id: str, total: int, *, status: str = "open", paid: int = 0) -> bm.Invoice:
    """A finalised invoice whose one line makes ``total``."""
    line = bm.InvoiceLine(f"il_{invoice_id}", invoice_id, total, "usd", "Pro", 1, 0, 1)
    made = bm.Invoice(
        invoice_id,
        "cus_1",
        "usd",
        0,
        0,
        1,
        "subscription_cycle",
        status=status,
        lines=[line],
        amount_paid=paid,
        finalized_at=1,
    )
    made.refresh_totals()  # the totals are stored figures, kept as billing keeps them
    return made


def books(invoices: list[bm.Invoice], erp: list[tuple[str, str]]) -> Books:
    """Billing holding ``invoices``, the ERP holding a transaction per (kind, external id)."""
    billing, erp_store = BillingStore(), ErpStore()
    for inv in invoices:
        billing.invoices[inv.id] = inv
    for n, (kind, external_id) in enumerate(erp, start=1):
        erp_store.transactions[str(n)] = em.Transaction(
            str(n), kind, f"T{n}", "1", "1", "1", "2026-01-01", "1", 0, 0, external_id=external_id
        )
    return Books(
        now=0,
        seed=0,
        accounts={},
        billing_store=billing,
        crm_store=CrmStore(),
        erp_store=erp_store,
        revrec_store=RevrecStore(),
        journals={},
        deliveries=(),
    )


def integration_config(
    tmp_path: Path, module: str, extra_env: dict[str, str] | None = None
) -> HarnessConfig:
    """harness.toml's integration, run as ``module`` with this interpreter and a private inbox."""
    config = load_config(REPO / "harness.toml")
    assert config.integration is not None
    env = {**config.integration.env, "INBOX_PATH": str(tmp_path / "inbox-{port}.sqlite")}
    integration = config.integration.model_copy(
        update={"command": [sys.executable, "-m", module], "env": {**env, **(extra_env or {})}}
    )
    return config.model_copy(update={"integration": integration})
