"""The reference-flow fixtures (products, prices, meter, price book, entity), made once per run."""

from __future__ import annotations

from typing import Any

import httpx

from loadtests import builders as b
from simulators.common.formcodec import encode_form

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class FixtureError(RuntimeError):
    """A fixture request was refused: the run cannot start."""


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if not response.is_success:
        raise FixtureError(f"{what}: {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json() if response.content else {}
    return body


def create_fixtures(
    urls: dict[str, str],
    headers: dict[str, dict[str, str]],
    ca_bundle: str,
) -> b.Catalog:
    """Create what the runner creates before step 1 of the reference flow, as each vendor's
    admin; ``headers`` per system carry auth and the harness-actor headers."""
    verify: str | bool = ca_bundle or True
    with httpx.Client(timeout=30, trust_env=False, verify=verify) as http:

        def stripe(path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
            response = http.post(
                f"{urls['billing']}{path}",
                content=encode_form(body),
                headers={**headers["billing"], **FORM},
            )
            return _check(response, what)

        def crm(method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
            response = http.request(
                method, f"{urls['crm']}{b.API}{path}", headers=headers["crm"], **kwargs
            )
            return _check(response, what)

        pro = stripe(
            "/v1/products",
            b.product(b.PRODUCT_KEY, "Pro", recognition="ratable", ssp_minor=b.SSP_MINOR),
            "billing product",
        )
        price = stripe(
            "/v1/prices", b.licensed_price(pro["id"], b.PRICE_KEY, b.PRICE_MINOR), "price"
        )
        api = stripe(
            "/v1/products",
            b.product(
                b.USAGE_PRODUCT_KEY, "API calls", recognition="usage", ssp_minor=b.USAGE_PRICE_MINOR
            ),
            "usage product",
        )
        meter = stripe("/v1/billing/meters", b.meter(b.USAGE_PRICE_KEY), "meter")
        usage_price = stripe(
            "/v1/prices",
            b.metered_price(api["id"], b.USAGE_PRICE_KEY, b.USAGE_PRICE_MINOR, meter["id"]),
            "usage price",
        )
        pricebook_entry_id = ""
        if "crm" in urls:
            product2 = crm(
                "POST",
                "/sobjects/Product2/",
                "CRM product",
                json=b.crm_product(b.PRODUCT_KEY, "Pro", pro["id"]),
            )
            books = crm(
                "GET",
                "/query/",
                "standard price book",
                params={"q": "SELECT Id FROM Pricebook2 WHERE IsStandard = true"},
            )
            entry = crm(
                "POST",
                "/sobjects/PricebookEntry/",
                "price book entry",
                json=b.pricebook_entry(books["records"][0]["Id"], product2["id"], b.PRICE_MINOR),
            )
            pricebook_entry_id = entry["id"]
        if "revrec" in urls:
            response = http.put(
                f"{urls['revrec']}/v1/entities/{b.ENTITY}",
                json=b.entity(b.CURRENCY),
                headers=headers["revrec"],
            )
            _check(response, "subledger entity")
    return b.Catalog(
        price_id=price["id"],
        product_id=pro["id"],
        usage_price_id=usage_price["id"],
        meter_event_name=meter["event_name"],
        pricebook_entry_id=pricebook_entry_id,
    )
