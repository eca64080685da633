"""The reference-flow fixtures every profile stands on, made by the scenario runner's own setup."""

from __future__ import annotations

from harness.config import HarnessConfig
from harness.runner import Run
from harness.scenario import Fixtures, Scenario
from harness.session import Session
from harness.steps import apply_fixtures
from loadtests import builders as b


def load_fixtures() -> Fixtures:
    """One entity, a licensed monthly price and a metered one, as a scenario would declare."""
    return Fixtures.model_validate(
        {
            "entities": [{"key": b.ENTITY.lower(), "name": "Finsim Inc.", "currency": b.CURRENCY}],
            "products": [
                {"key": b.PRODUCT_KEY, "name": "Pro", "ssp_minor": b.SSP_MINOR},
                {
                    "key": b.USAGE_PRODUCT_KEY,
                    "name": "API calls",
                    "ssp_minor": b.USAGE_PRICE_MINOR,
                    "recognition": "usage",
                },
            ],
            "prices": [
                {
                    "key": b.PRICE_KEY,
                    "product": b.PRODUCT_KEY,
                    "currency": b.CURRENCY,
                    "unit_amount": b.PRICE_MINOR,
                },
                {
                    "key": b.USAGE_PRICE_KEY,
                    "product": b.USAGE_PRODUCT_KEY,
                    "currency": b.CURRENCY,
                    "unit_amount": b.USAGE_PRICE_MINOR,
                    "usage": True,
                },
            ],
        }
    )


def create_fixtures(session: Session, config: HarnessConfig) -> b.Catalog:
    """Create them as `harness run` does before step 1, and name what the users need."""
    run = Run(Scenario(name="load fixtures", fixtures=load_fixtures()), session, config)
    try:
        apply_fixtures(run)
    finally:
        run.actors.close()
    names = run.names
    return b.Catalog(
        price_id=names[f"price:{b.PRICE_KEY}"],
        product_id=names[f"product:{b.PRODUCT_KEY}"],
        usage_price_id=names[f"price:{b.USAGE_PRICE_KEY}"],
        # The runner names each usage price's meter after the price.
        meter_event_name=b.USAGE_PRICE_KEY,
        pricebook_entry_id=names.get(f"pricebook_entry:{b.PRICE_KEY}", ""),
    )
