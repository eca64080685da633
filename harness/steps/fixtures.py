"""The world a scenario starts from (its fixtures, made as each vendor's admin would) and the
naming conventions every step shares."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from harness.actors import StepFailed
from harness.steps.registry import Context, Line, Path, Problem
from simulators.common.money import to_decimal

if TYPE_CHECKING:
    from harness.books import Books
    from harness.play import Run


def entity_id(key: str) -> str:
    """Scenario entity keys are lower case; the ERP subsidiary and revrec entity are upper."""
    return key.upper()


def major(minor: int, currency: str) -> float:
    """Minor units as the decimal amount Salesforce stores (a JSON number)."""
    return float(to_decimal(minor, currency))


def must_be_live(ctx: Context, deal: str, at: Path) -> Iterator[Problem]:
    """A deal a step acts on has a subscription by then: won (an opportunity) or made in
    billing, and not cancelled at once since."""
    if ctx.names.get(deal) == "opportunity" and deal not in ctx.won:
        yield Problem(at, f"{deal!r} is not won before this step: it has no subscription yet")
    elif deal in ctx.cancelled:
        yield Problem(at, f"{deal!r} is cancelled before this step")


def one_billing_cadence(ctx: Context, lines: Sequence[Line]) -> Iterator[Problem]:
    """Stripe bills a subscription's items in one currency on one interval: lines that mix
    them are refused by the vendor, so they are a load error here."""
    prices = ctx.prices
    known = [prices[line.price] for line in lines if line.price in prices]
    currencies = sorted({p.currency for p in known})
    cadences = sorted({(p.interval or "month", p.interval_count) for p in known})
    if len(currencies) > 1:
        yield Problem(("lines",), f"lines mix currencies {', '.join(currencies)}")
    if len(cadences) > 1:
        shown = ", ".join(f"every {n} {unit}" for unit, n in cadences)
        yield Problem(("lines",), f"lines mix billing intervals ({shown})")


# --- fixtures --------------------------------------------------------------------------------
def apply_fixtures(run: Run) -> None:
    """The world the scenario starts from, created as each vendor's admin would."""
    f = run.scenario.fixtures
    a = run.actors
    books = run.snapshot()
    for entity in f.entities:
        eid = entity_id(entity.key)
        run.names[f"entity:{entity.key}"] = eid
        if run.has("erp") and eid not in books.subsidiary_by_external_id:
            raise StepFailed(
                f"entity {entity.key}: the ERP has no subsidiary with external id {eid} "
                "(the seeded ones are US, UK and DE)"
            )
        if run.has("revrec"):
            a.call(
                "revrec",
                "PUT",
                f"/v1/entities/{eid}",
                json={"functional_currency": entity.currency, "name": entity.name},
            )
    if run.has("erp"):
        _erp_currencies(run, books)
    for rate in f.rates:
        if run.has("erp"):
            on = rate.effective_on or run.scenario.start_at[:10]
            rate_body = {
                "baseCurrency": {"externalId": rate.quote.upper()},
                "transactionCurrency": {"externalId": rate.base.upper()},
                "exchangeRate": float(rate.rate),
                "effectiveDate": on,
            }
            existing = _rate_on(books, rate.quote.upper(), rate.base.upper(), on)
            if existing is None:
                a.netsuite("POST", "/currencyRate", rate_body)
            else:  # the ERP holds one rate per pair and day: the fixture's replaces the seed's
                a.netsuite(
                    "PATCH",
                    f"/currencyRate/{existing}",
                    {"exchangeRate": rate_body["exchangeRate"]},
                )
    for tax_rate in f.tax_rates:
        rate_fields: dict[str, Any] = {
            "display_name": tax_rate.display_name,
            "percentage": tax_rate.percentage,
            "inclusive": tax_rate.inclusive,
        }
        if tax_rate.jurisdiction:
            rate_fields["jurisdiction"] = tax_rate.jurisdiction
        created = a.stripe("POST", "/v1/tax_rates", rate_fields)
        run.names[f"tax_rate:{tax_rate.key}"] = created["id"]
    for product in f.products:
        metadata = {"key": product.key, "recognition": product.recognition}
        if product.ssp_minor is not None:
            metadata["ssp_minor"] = str(product.ssp_minor)
        created = a.stripe("POST", "/v1/products", {"name": product.name, "metadata": metadata})
        run.names[f"product:{product.key}"] = created["id"]
        if run.has("crm"):
            row = a.salesforce(
                "POST",
                "/sobjects/Product2/",
                {
                    "Name": product.name,
                    "ProductCode": product.key,
                    "Billing_Product_Id__c": created["id"],
                },
            )
            run.names[f"product2:{product.key}"] = row["id"]
    for price in f.prices:
        body: dict[str, Any] = {
            "product": run.names[f"product:{price.product}"],
            "currency": price.currency,
            "unit_amount": price.unit_amount,
            "lookup_key": price.key,
            "metadata": {"key": price.key},
        }
        if price.interval is not None:
            body["recurring"] = {"interval": price.interval, "interval_count": price.interval_count}
        if price.usage:
            meter = a.stripe(
                "POST",
                "/v1/billing/meters",
                {
                    "display_name": price.key,
                    "event_name": price.key,
                    "default_aggregation": {"formula": "sum"},
                },
            )
            run.names[f"meter:{price.key}"] = meter["id"]
            body["recurring"] = {
                "interval": price.interval or "month",
                "interval_count": price.interval_count,
                "usage_type": "metered",
                "meter": meter["id"],
            }
        created = a.stripe("POST", "/v1/prices", body)
        run.names[f"price:{price.key}"] = created["id"]
        if run.has("crm") and price.currency.upper() in crm_currencies(run):
            entry = a.salesforce(
                "POST",
                "/sobjects/PricebookEntry/",
                {
                    "Pricebook2Id": standard_pricebook(run),
                    "Product2Id": run.names[f"product2:{price.product}"],
                    "UnitPrice": major(price.unit_amount, price.currency),
                    "CurrencyIsoCode": price.currency.upper(),
                    "IsActive": True,
                },
            )
            run.names[f"pricebook_entry:{price.key}"] = entry["id"]
    for coupon in f.coupons:  # after the products it may be restricted to
        fields: dict[str, Any] = {"percent_off": coupon.percent_off, "duration": coupon.duration}
        if coupon.applies_to:
            products = [run.names[f"product:{key}"] for key in coupon.applies_to]
            fields["applies_to"] = {"products": products}
        created = a.stripe("POST", "/v1/coupons", fields)
        run.names[f"coupon:{coupon.key}"] = created["id"]


def _erp_currencies(run: Run, books: Books) -> None:
    """Every currency the scenario sells or converts in is enabled in the ERP (its admin adds
    one the seed lacks, e.g. KWD), so documents and rates in it can be booked."""
    f = run.scenario.fixtures
    wanted = {c.currency for c in f.customers} | {p.currency for p in f.prices}
    wanted |= {r.base for r in f.rates} | {r.quote for r in f.rates}
    have = {c.symbol.upper() for c in books.erp_currencies.values()}
    for code in sorted(c.upper() for c in wanted if c.upper() not in have):
        run.actors.netsuite("POST", "/currency", {"name": code, "symbol": code, "externalId": code})


def crm_currencies(run: Run) -> frozenset[str]:
    """The currencies the CRM org sells in (its CurrencyIsoCode picklist): a price in another
    one (yen, dinars) has no pricebook entry and is sold through billing only."""
    name = "crm:currencies"
    if name not in run.names:
        described = run.actors.salesforce("GET", "/sobjects/PricebookEntry/describe")
        field = next(f for f in described["fields"] if f["name"] == "CurrencyIsoCode")
        run.names[name] = ",".join(v["value"] for v in field["picklistValues"])
    return frozenset(run.names[name].split(","))


def _rate_on(books: Books, base: str, currency: str, on: str) -> str | None:
    codes = {c.id: c.symbol for c in books.erp_currencies.values()}
    for row in books.erp_rates.values():
        if (codes.get(row.base), codes.get(row.currency), row.effective_on) == (base, currency, on):
            return str(row.id)
    return None


def standard_pricebook(run: Run) -> str:
    name = "pricebook:standard"
    if name not in run.names:
        found = run.actors.salesforce(
            "GET", "/query/", params={"q": "SELECT Id FROM Pricebook2 WHERE IsStandard = true"}
        )
        run.names[name] = found["records"][0]["Id"]
    return run.names[name]
