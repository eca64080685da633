"""What this integration owns and how it names documents: its own defaults, or the harness's.

Run as the integration under test it owns every hand-off and names documents its own way
(the defaults below). Run by the harness as a *stand-in* beside another team's integration,
it owns only the hand-offs that integration does not (``FINSIM_HANDOFFS``) and names and finds
documents the way the declaration says (``FINSIM_LINKS``, the harness.toml ``[links]`` made
whole), so the two integrations' documents meet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

HANDOFFS = (
    "crm.provision",
    "crm.amend",
    "crm.writeback",
    "erp.customers",
    "erp.invoices",
    "billing.writeback",
    "erp.payments",
    "erp.credit_memos",
    "revrec.contracts",
    "revrec.billing",
    "erp.journals",
)
# Our own conventions (docs/reference-flow.md); the harness's defaults are these, written out.
DEFAULT_LINKS: dict[str, dict[str, str]] = {
    "billing.customer": {"metadata": "crm_account_id"},
    "billing.subscription": {"metadata": "crm_opportunity_id"},
    "erp.customer": {"external_id": "{customer.id}"},
    "erp.invoice": {"external_id": "{invoice.id}"},
    "erp.invoice_credit": {"external_id": "{invoice.id}"},
    "erp.payment": {"external_id": "pay_{invoice.id}"},
    "erp.credit_memo": {"external_id": "{credit_note.id}"},
    "erp.journal": {"external_id": "{close.id}"},
    "revrec.contract": {"external_id": "{subscription.id}"},
    "revrec.line": {"external_id": "{item.id}"},
    "revrec.billing_event": {"external_id": "{invoice.id}"},
    "revrec.billing_credit": {"external_id": "{invoice.id}-credit"},
    "revrec.billing_charge": {"external_id": "{invoice.id}-charge"},
    "revrec.billing_void": {"external_id": "{invoice.id}-void"},
    "revrec.credit_event": {"external_id": "{credit_note.id}"},
}
DEFAULT_WRITEBACK = {
    "opportunity_subscription": "Billing_Subscription_Id__c",
    "opportunity_synced": "Synced_To_Billing__c",
    "account_customer": "Billing_Customer_Id__c",
    "account_erp_customer": "ERP_Customer_Id__c",
}
DEFAULT_BILLING_WRITEBACK = {"invoice_erp_document": "erp_document_id"}
DEFAULT_ITEMS = {"subscription": "SUBSCRIPTION", "other": "SERVICES"}
_NAME = re.compile(r"\{([A-Za-z_][\w.]*)\}")


class ConventionError(ValueError):
    """A declared convention this integration cannot follow."""


@dataclass(frozen=True)
class Conventions:
    owned: frozenset[str] = frozenset(HANDOFFS)
    links: dict[str, dict[str, str]] = field(default_factory=lambda: dict(DEFAULT_LINKS))
    writeback: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_WRITEBACK))
    billing_writeback: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_BILLING_WRITEBACK)
    )
    items: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ITEMS))
    standin: bool = False  # True when the harness runs us beside another integration

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Conventions:
        owned = env.get("FINSIM_HANDOFFS")
        declared = json.loads(env.get("FINSIM_LINKS") or "{}")
        unknown = sorted(set((owned or "").split(",")) - set(HANDOFFS) - {""})
        if unknown:
            raise ConventionError(f"FINSIM_HANDOFFS names unknown hand-offs {unknown}")
        return cls(
            owned=frozenset(HANDOFFS if owned is None else [h for h in owned.split(",") if h]),
            links={**DEFAULT_LINKS, **declared.get("links", {})},
            writeback={**DEFAULT_WRITEBACK, **declared.get("crm_writeback", {})},
            billing_writeback={
                **DEFAULT_BILLING_WRITEBACK,
                **declared.get("billing_writeback", {}),
            },
            items={**DEFAULT_ITEMS, **declared.get("erp_items", {})},
            standin=env.get("FINSIM_ACTOR") == "standin",
        )

    def owns(self, handoff: str) -> bool:
        return handoff in self.owned

    # naming ------------------------------------------------------------------------------------
    def external_id(self, link: str, **values: Any) -> str:
        """The external id a ``link`` document carries, rendered from its source's values."""
        decl = self.links[link]
        template = decl.get("external_id")
        if template is None:
            raise ConventionError(f"{link} is declared by {sorted(decl)}, not by external id")
        return render(template, values)

    def lookup(self, link: str, **values: Any) -> tuple[str, str]:
        """How to find a ``link`` document: ("external_id", id) or ("field", name=value)."""
        decl = self.links[link]
        if "external_id" in decl:
            return "external_id", render(decl["external_id"], values)
        if "field" in decl:
            source = next(iter(values))
            value = render(decl.get("value") or f"{{{source}.id}}", values)
            return "field", f"{decl['field']}={value}"
        raise ConventionError(f"cannot find {link} documents declared by {sorted(decl)}")

    def source_id(self, link: str, external_id: str) -> str | None:
        """The source id an external id names, for a template of one ``{….id}`` in fixed
        text (``{item.id}``, ``LINE-{item.id}``); None when it does not fit the template."""
        template = self.links[link].get("external_id", "")
        names = _NAME.findall(template)
        if len(names) != 1 or not names[0].endswith(".id"):
            raise ConventionError(f"{link}: cannot read source ids back from {template!r}")
        prefix, _, suffix = template.partition("{" + names[0] + "}")
        if not (external_id.startswith(prefix) and external_id.endswith(suffix)):
            return None
        return external_id[len(prefix) : len(external_id) - len(suffix)] or None

    def metadata_key(self, link: str) -> str:
        decl = self.links[link]
        if "metadata" not in decl:
            raise ConventionError(f"{link} is declared by {sorted(decl)}, not by metadata")
        return decl["metadata"]


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill ``{invoice.id}``-style names from ``values`` (``invoice={"id": …}``)."""

    def fill(match: re.Match[str]) -> str:
        source, _, name = match.group(1).partition(".")
        value = (values.get(source) or {}).get(name)
        if value is None:
            raise ConventionError(f"no value for {{{match.group(1)}}} in {template!r}")
        return str(value)

    return _NAME.sub(fill, template)
