"""The world a load run stands on: the reference-flow fixtures, and target.json for Locust."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.config import HarnessConfig
from harness.load.profiles import Calendar
from harness.play import Run
from harness.scenario import Fixtures, Scenario
from harness.session import Session
from harness.steps import apply_fixtures

# The reference-flow fixtures every profile stands on (docs/reference-flow.md, "Setup").
ENTITY = "US"
CURRENCY = "usd"
PRODUCT_KEY = "pro"
PRICE_KEY = "pro_usd"
PRICE_MINOR = 4_900
SSP_MINOR = 5_900
USAGE_PRODUCT_KEY = "api"
USAGE_PRICE_KEY = "api_usd"
USAGE_PRICE_MINOR = 2
# Where `loadtests.target` looks for the file this module writes.
TARGET_ENV = "FINSIM_LOAD_TARGET"


@dataclass(frozen=True)
class Catalog:
    """Ids of the fixtures, as created in each system: what a user needs to build a request."""

    price_id: str
    product_id: str
    usage_price_id: str
    meter_event_name: str
    pricebook_entry_id: str
    price_minor: int = PRICE_MINOR
    currency: str = CURRENCY


def load_fixtures() -> Fixtures:
    """One entity, a licensed monthly price and a metered one, as a scenario would declare."""
    return Fixtures.model_validate(
        {
            "entities": [{"key": ENTITY.lower(), "name": "Finsim Inc.", "currency": CURRENCY}],
            "products": [
                {"key": PRODUCT_KEY, "name": "Pro", "ssp_minor": SSP_MINOR},
                {
                    "key": USAGE_PRODUCT_KEY,
                    "name": "API calls",
                    "ssp_minor": USAGE_PRICE_MINOR,
                    "recognition": "usage",
                },
            ],
            "prices": [
                {
                    "key": PRICE_KEY,
                    "product": PRODUCT_KEY,
                    "currency": CURRENCY,
                    "unit_amount": PRICE_MINOR,
                },
                {
                    "key": USAGE_PRICE_KEY,
                    "product": USAGE_PRODUCT_KEY,
                    "currency": CURRENCY,
                    "unit_amount": USAGE_PRICE_MINOR,
                    "usage": True,
                },
            ],
        }
    )


def create_fixtures(session: Session, config: HarnessConfig) -> Catalog:
    """Create them as `harness run` does before step 1, and name what the users need."""
    run = Run(Scenario(name="load fixtures", fixtures=load_fixtures()), session, config)
    try:
        apply_fixtures(run)
    finally:
        run.actors.close()
    names = run.names
    return Catalog(
        price_id=names[f"price:{PRICE_KEY}"],
        product_id=names[f"product:{PRODUCT_KEY}"],
        usage_price_id=names[f"price:{USAGE_PRICE_KEY}"],
        # The runner names each usage price's meter after the price.
        meter_event_name=USAGE_PRICE_KEY,
        pricebook_entry_id=names.get(f"pricebook_entry:{PRICE_KEY}", ""),
    )


def write_target(
    path: Path,
    session: Session,
    catalog: Catalog,
    *,
    start_at: int,
    seed: int,
    calendar: Calendar,
) -> None:
    """Everything a Locust process needs to act as the vendors' staff, as one JSON file (the
    Locust users read it with `loadtests.target`; the two sides share only this format)."""
    ctx = session.context
    systems = [name for name in session.stack.sims if name in ctx]
    target: dict[str, Any] = {
        "urls": {name: ctx[name]["url"] for name in systems},
        "credentials": {name: {k: str(v) for k, v in ctx[name].items()} for name in systems},
        "control_token": ctx["control_token"],
        "ca_bundle": ctx["ca_bundle"],
        "catalog": asdict(catalog),
        "entities": [ENTITY],
        "start_at": start_at,
        "seed": seed,
        "calendar": asdict(calendar),
    }
    path.write_text(json.dumps(target, indent=2))
