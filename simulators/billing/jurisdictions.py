"""The documented jurisdiction table automatic tax computes from (our stand-in for Stripe Tax).

Keyed by the customer's address (country, and state in the United States) and the product's
tax code. Rates are the jurisdiction's standard rate only (no county, city or district
surtaxes, no thresholds or registrations): a simplification, stated in docs/billing.md.
"""

from __future__ import annotations

from dataclasses import dataclass

# Stripe product tax codes the table knows; a product without one is taxed as the first.
GENERAL_SERVICES = "txcd_10000000"  # General - Electronically Supplied Services (Stripe's preset)
SAAS_BUSINESS = "txcd_10103001"  # Software as a service (SaaS) - business use
NONTAXABLE = "txcd_00000000"  # Nontaxable
TAX_CODES = {
    GENERAL_SERVICES: "General - Electronically Supplied Services",
    SAAS_BUSINESS: "Software as a service (SaaS) - business use",
    NONTAXABLE: "Nontaxable",
}


@dataclass(frozen=True)
class Jurisdiction:
    country: str
    state: str | None
    name: str
    level: str  # country | state
    tax_type: str  # vat | sales_tax | gst
    percentage: str
    # Tax codes this jurisdiction does not tax (besides NONTAXABLE, which none taxes).
    untaxed: frozenset[str] = frozenset()

    @property
    def display_name(self) -> str:
        return {"vat": "VAT", "gst": "GST"}.get(self.tax_type, "Sales Tax")


TABLE: tuple[Jurisdiction, ...] = (
    # United States: state rates; California and Texas-style exemptions of SaaS kept simple.
    Jurisdiction(
        "US", "CA", "California", "state", "sales_tax", "7.25", frozenset({SAAS_BUSINESS})
    ),
    Jurisdiction("US", "NY", "New York", "state", "sales_tax", "4"),
    Jurisdiction("US", "TX", "Texas", "state", "sales_tax", "6.25"),
    Jurisdiction("US", "WA", "Washington", "state", "sales_tax", "6.5"),
    Jurisdiction("US", "PA", "Pennsylvania", "state", "sales_tax", "6"),
    # VAT / GST countries: the standard rate.
    Jurisdiction("DE", None, "Germany", "country", "vat", "19"),
    Jurisdiction("FR", None, "France", "country", "vat", "20"),
    Jurisdiction("NL", None, "Netherlands", "country", "vat", "21"),
    Jurisdiction("IE", None, "Ireland", "country", "vat", "23"),
    Jurisdiction("GB", None, "United Kingdom", "country", "vat", "20"),
    Jurisdiction("AU", None, "Australia", "country", "gst", "10"),
)
_BY_PLACE = {(j.country, j.state): j for j in TABLE}


@dataclass(frozen=True)
class Taxability:
    """What the table says for one line: the jurisdiction (None: outside the table) and why."""

    jurisdiction: Jurisdiction | None
    reason: str  # standard_rated | not_subject_to_tax | product_exempt | not_collecting

    @property
    def taxed(self) -> bool:
        return self.reason == "standard_rated"


def taxability(country: str, state: str | None, tax_code: str | None) -> Taxability:
    """The tax that applies to a product with ``tax_code`` sold to an address in
    ``country``/``state``: the US is looked up by state, every other country as a whole."""
    code = tax_code or GENERAL_SERVICES
    place = (country.upper(), (state or "").upper() or None) if country.upper() == "US" else None
    found = _BY_PLACE.get(place or (country.upper(), None))
    if found is None:
        return Taxability(None, "not_collecting")
    if code == NONTAXABLE:
        return Taxability(found, "product_exempt")
    if code in found.untaxed:
        return Taxability(found, "not_subject_to_tax")
    return Taxability(found, "standard_rated")


def known_code(tax_code: str) -> bool:
    return tax_code in TAX_CODES
