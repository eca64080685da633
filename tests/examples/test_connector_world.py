"""The Stripe → NetSuite connector as a real process against served billing and ERP.

Holds ``ConnectorWorld`` (the finance team in Stripe, the controller reading NetSuite) for the
other ``test_connector_*`` modules, and tests that its ``harness.toml`` and settings hold up.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import stripe

from harness.config import HarnessConfig, SimulatorsConfig, load_config, render_template
from harness.exceptions import Exceptions
from harness.judging import Judge
from harness.session import Session, open_session

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "examples" / "stripe_netsuite_connector"
DECLARATION = load_config(PACKAGE / "harness.toml")


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def major(minor: int) -> Decimal:
    """Cents → the decimal amount NetSuite shows (two-decimal currencies only)."""
    return Decimal(minor) / 100


def connector_config() -> HarnessConfig:
    """The connector's own declaration with only billing and the ERP served: the tests act as
    billing ops themselves, so no stand-in plays the CRM or the subledger."""
    return DECLARATION.model_copy(
        update={
            "simulators": SimulatorsConfig(
                systems=["billing", "erp"], tls=[], webhook_time_scale=1e-5
            ),
            "scope": DECLARATION.scope.model_copy(update={"standin": False}),
        }
    )


class _AsTheVendor(stripe.RequestsClient):
    """Stripe calls made as billing ops (`X-Sim-Actor: harness`): never faulted, never judged."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__(timeout=10)
        self.extra = headers

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        **kwargs: Any,
    ) -> Any:
        return super().request(method, url, {**(headers or {}), **self.extra}, post_data, **kwargs)


class ConnectorWorld:
    """The people around the connector: billing ops in Stripe, the controller in NetSuite."""

    def __init__(self, session: Session) -> None:
        self.session = session
        ctx = session.context
        self.ctx = ctx
        self.control = {"X-Sim-Control-Token": ctx["control_token"]}
        self.stripe = stripe.StripeClient(
            ctx["billing"]["api_key"],
            base_addresses={"api": ctx["billing"]["url"]},
            max_network_retries=0,
            http_client=_AsTheVendor({"X-Sim-Actor": "harness", **self.control}),
        )
        # As the controller: never faulted, and left out of the connector's traffic checks.
        self.erp = httpx.Client(
            base_url=ctx["erp"]["url"],
            headers={
                "Authorization": f"Bearer {ctx['erp']['token']}",
                "X-Sim-Actor": "harness",
                **self.control,
            },
            trust_env=False,
            timeout=10,
        )

    # the world -------------------------------------------------------------------------------
    def sim(self, method: str, path: str, body: Any = None, system: str = "erp") -> Any:
        response = httpx.request(
            method,
            f"{self.ctx[system]['url']}/_sim{path}",
            json=body,
            headers=self.control,
            trust_env=False,
            timeout=10,
        )
        assert response.is_success, response.text
        return response.json() if response.content else None

    def advance(self, duration: str) -> None:
        self.sim("POST", "/clock/advance", {"duration": duration})

    def fault(self, rule: dict[str, Any]) -> None:
        system = str(rule["system"]) if rule.get("system") in ("billing", "erp") else "erp"
        self.sim("POST", "/faults", rule, system)

    def clear_faults(self) -> None:
        self.sim("DELETE", "/faults")

    def close_period(self, entity: str, month: str) -> None:
        self.sim("POST", f"/periods/{entity}/{month}", {"state": "closed"})

    def set_inactive(self, stripe_customer: str, inactive: bool) -> None:
        """A finance user makes the customer's ERP record (in)active, as `erp.deactivate`."""
        found = self.document("customer", f"STRIPE-{stripe_customer}")
        self._as_finance("PATCH", f"/customer/{found['id']}", {"isInactive": inactive})

    def lock_ar(self, entity: str, month: str, locked: bool) -> None:
        """AR (un)locked for the month with the administrator's token, as `erp.lock_ar`."""
        admin = {"Authorization": f"Bearer {self.ctx['erp']['admin_token']}"}
        self._as_finance(
            "PATCH", f"/accountingPeriod/eid:{entity}-{month}", {"arLocked": locked}, admin
        )

    def _as_finance(
        self, method: str, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        answer = self.erp.request(
            method, f"/services/rest/record/v1{path}", json=body, headers=headers or {}
        )
        assert answer.is_success, answer.text

    def set_aside(self) -> Exceptions:
        """The connector's declared exception list, as the harness reads it."""
        probe = self.connector.exceptions
        assert probe is not None
        listed = probe.read()
        assert listed.error is None, listed.error
        return listed

    def replay(self) -> None:
        """The operator replays every open item; the connector then settles."""
        probe = self.connector.exceptions
        assert probe is not None
        probe.replay(None)
        self.settle(errors_allowed=True)

    @property
    def connector(self) -> Any:
        assert self.session.integration is not None
        return self.session.integration

    def log(self) -> str:
        return "\n".join(self.connector.output())

    def settle(self, *, errors_allowed: bool = False) -> None:
        result = self.session.settle(window_s=0.3, timeout_s=40)
        tail = "\n".join(self.connector.output()[-60:])
        assert result.settled, f"{result}\n{tail}"
        if not errors_allowed:
            assert " ERROR " not in self.log(), tail

    def violations(self, rules: list[str] | None = None) -> list[str]:
        """What the harness's judges find, reading the connector's documents through its
        declared links (and its exception list, while it runs) and judging the hand-offs it
        declares it owns."""
        judge = Judge.from_config(DECLARATION, base=str(PACKAGE), only=rules)
        books = judge.books(self.session.stack.world)
        if self.connector.running:  # its exception list too, as `harness run` reads it
            books = dataclasses.replace(books, exceptions=self.set_aside())
        return [str(v) for v in judge.check(books)]

    # billing, as the finance team ------------------------------------------------------------
    def price(self, unit_amount: int, currency: str = "usd", interval: str = "month") -> str:
        product = self.stripe.v1.products.create(params={"name": f"Plan {unit_amount}"})
        return self.stripe.v1.prices.create(
            params={
                "product": product.id,
                "currency": currency,
                "unit_amount": unit_amount,
                "recurring": {"interval": interval},
            }
        ).id

    def customer(self, name: str, entity: str, *, card: bool = False) -> str:
        params: dict[str, Any] = {"name": name, "metadata": {"entity": entity}}
        if card:
            params["payment_method"] = "pm_card_visa"
            params["invoice_settings"] = {"default_payment_method": "pm_card_visa"}
        return self.stripe.v1.customers.create(params=params).id  # type: ignore[arg-type]

    def subscribe(self, customer: str, price: str, quantity: int, *, invoiced: bool = True) -> Any:
        """A subscription; ``invoiced``: send_invoice (paid later), else charged at once."""
        params: dict[str, Any] = {
            "customer": customer,
            "items": [{"price": price, "quantity": quantity}],
        }
        if invoiced:
            params.update(collection_method="send_invoice", days_until_due=30)
        return self.stripe.v1.subscriptions.create(params=params)  # type: ignore[arg-type]

    def change_seats(self, sub: Any, quantity: int, proration_behavior: str) -> None:
        """The subscription's one item to ``quantity`` seats."""
        self.stripe.v1.subscriptions.update(
            sub.id,
            params={
                "items": [{"id": sub["items"].data[0].id, "quantity": quantity}],
                "proration_behavior": proration_behavior,
            },
        )

    def pay(self, invoice: str) -> Any:
        return self.stripe.v1.invoices.pay(invoice, params={"payment_method": "pm_card_visa"})

    def invoice(self, invoice: str) -> Any:
        return self.stripe.v1.invoices.retrieve(invoice)

    def invoices(self, customer: str) -> list[Any]:
        """The customer's invoices, oldest first."""
        page = self.stripe.v1.invoices.list(params={"customer": customer, "limit": 100})
        return sorted(page.data, key=lambda inv: (inv.created, inv.id))

    # NetSuite, as the controller -------------------------------------------------------------
    def suiteql(self, query: str) -> list[dict[str, Any]]:
        response = self.erp.post(
            "/services/rest/query/v1/suiteql", json={"q": query}, headers={"Prefer": "transient"}
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def record(self, kind: str, key: str) -> dict[str, Any] | None:
        response = self.erp.get(
            f"/services/rest/record/v1/{kind}/{key}", params={"expandSubResources": "true"}
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def document(self, kind: str, external_id: str) -> dict[str, Any]:
        found = self.record(kind, f"eid:{external_id}")
        assert found is not None, f"no ERP {kind} {external_id}\n{self.log()[-3000:]}"
        return found

    def lines(self, record: dict[str, Any]) -> list[tuple[str, Decimal]]:
        """(item external id, amount) of an invoice's or credit memo's item lines."""
        rows = self.suiteql("SELECT id, itemid FROM item")
        items = {row["id"]: row["itemid"] for row in rows}
        return [
            (items[line["item"]["id"]], Decimal(str(line["amount"])))
            for line in record["item"]["items"]
        ]

    def applied(self, record: dict[str, Any]) -> dict[str, Decimal]:
        """ERP invoice id → amount, of a payment's or credit memo's applications."""
        return {
            str(a["doc"]["id"]): Decimal(str(a["amount"]))
            for a in (record.get("apply") or {}).get("items", [])
        }

    def count(self, where: str) -> int:
        return len(self.suiteql(f"SELECT id FROM transaction WHERE {where}"))

    def currency_of(self, record: dict[str, Any]) -> str:
        rows = self.suiteql(f"SELECT symbol FROM currency WHERE id = {record['currency']['id']}")
        return str(rows[0]["symbol"])

    def period_of(self, record: dict[str, Any]) -> str:
        return str(record["postingPeriod"]["refName"])


@contextmanager
def connector_world(
    start_at: str = "2026-01-01T00:00:00Z", *, root: Path = REPO, seed: int = 7
) -> Iterator[ConnectorWorld]:
    # The declaration's paths are relative to where it lives: the package's own directory.
    here = root / PACKAGE.relative_to(REPO)
    with open_session(connector_config(), cwd=here, start_at=start_at, seed=seed) as session:
        world = ConnectorWorld(session)
        try:
            yield world
        finally:
            world.erp.close()


# the declaration itself -----------------------------------------------------------------------
def test_the_declaration_renders_against_a_session_and_declares_scope_and_links() -> None:
    config = DECLARATION
    assert config.integration is not None and config.integration.cwd == "../.."
    source = config.integration.source
    assert source is not None and (PACKAGE / config.integration.cwd / source).resolve() == PACKAGE
    context = {
        "port": 5,
        "run_dir": "/r",
        "billing": {"url": "http://b", "api_key": "sk", "webhook_secret": "wh"},
        "erp": {"url": "http://e", "token": "t"},
    }
    env = {k: render_template(v, context) for k, v in config.integration.env.items()}
    assert env["CONNECTOR_DB"] == "/r/connector.sqlite"
    assert env["STRIPE_SIGNING_SECRET"] == "wh" and env["NETSUITE_BASE_URL"] == "http://e"
    assert config.scope.owns == [
        "erp.customers",
        "erp.invoices",
        "erp.payments",
        "erp.credit_memos",
    ]
    assert config.links.link("erp.payment").external_id == "PMT-{invoice.id}"
    assert config.links.link("erp.invoice").field == "custbody_stripe_invoice_id"
    assert config.links.link("erp.credit_memo").field == "custbody_stripe_credit_note_id"
    assert config.links.erp_items == {"subscription": "SUBSCRIPTION", "other": "SERVICES"}


def _start_with(**settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "NETSUITE_"))}
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-m", "examples.stripe_netsuite_connector"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_settings_are_one_clear_message_and_exit_2() -> None:
    done = _start_with(CONNECTOR_PORT="not-a-port", STRIPE_API_BASE="ftp://x")
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    for name in ("CONNECTOR_PORT", "STRIPE_API_BASE", "STRIPE_SECRET_KEY", "NETSUITE_BASE_URL"):
        assert name in done.stderr, done.stderr


def test_an_unusable_database_is_one_clear_message_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    done = _start_with(
        CONNECTOR_DB=str(tmp_path / "file" / "queue.sqlite"),
        STRIPE_SECRET_KEY="sk_test_x",
        STRIPE_SIGNING_SECRET="whsec_x",
        NETSUITE_BASE_URL="http://127.0.0.1:9",
        NETSUITE_ACCESS_TOKEN="t",
    )
    assert done.returncode == 2, done
    assert "cannot open CONNECTOR_DB" in done.stderr and "Traceback" not in done.stderr
