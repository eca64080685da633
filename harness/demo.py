"""`harness demo`: one billing lifecycle through the real stripe SDK, its invoices as a table."""

from __future__ import annotations

import stripe
from rich.console import Console
from rich.table import Table

from harness.up import UpOptions, build_stack
from simulators.common.clock import add_months, iso
from simulators.common.server import ThreadedServer

DAY = 86400


def run_demo(console: Console, seed: int = 42) -> int:
    stack = build_stack(
        UpOptions(seed=seed, ports={"billing": 0}, systems=["billing"], webhook_time_scale=0.001)
    )
    sim = stack.sims["billing"]
    with ThreadedServer(stack.server.sites, background=[stack.world.dispatcher.run]) as srv:
        url = srv.urls["billing"]
        console.print(f"[bold]billing simulator[/] at {url} (seed {seed})")
        client = stripe.StripeClient(
            sim.credentials()["api_key"], base_addresses={"api": url}, max_network_retries=2
        )
        start = stack.world.clock.now()
        clock = client.v1.test_helpers.test_clocks.create({"frozen_time": start, "name": "demo"})
        product = client.v1.products.create({"name": "Pro seats"})
        pro = client.v1.prices.create(
            {
                "product": product.id,
                "currency": "usd",
                "unit_amount": 1000,
                "recurring": {"interval": "month"},
            }
        )
        team = client.v1.prices.create(
            {
                "product": product.id,
                "currency": "usd",
                "unit_amount": 1500,
                "recurring": {"interval": "month"},
            }
        )
        customer = client.v1.customers.create(
            {
                "email": "ap@acme.example",
                "name": "Acme",
                "test_clock": clock.id,
                "payment_method": "pm_card_visa",
                "invoice_settings": {"default_payment_method": "pm_card_visa"},
            }
        )
        sub = client.v1.subscriptions.create(
            {"customer": customer.id, "items": [{"price": pro.id, "quantity": 3}]}
        )
        console.print(f"subscribed {customer.id} to 3 × $10.00/month: {sub.id} {sub.status}")
        client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": start + 10 * DAY})
        client.v1.subscriptions.update(
            sub.id,
            {
                "items": [{"id": sub["items"].data[0].id, "price": team.id}],
                "proration_behavior": "always_invoice",
            },
        )
        console.print("day 10: upgraded to $15.00/seat, prorations invoiced now")
        renewal = add_months(start, 1)
        client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": renewal + 2 * 3600})
        console.print(f"advanced the test clock to {iso(renewal + 2 * 3600)}: renewal ran")

        table = Table(title="invoices")
        for column in ("number", "reason", "status", "total", "amount_paid", "lines"):
            table.add_column(column)
        invoices = client.v1.invoices.list({"customer": customer.id, "limit": 10})
        for inv in reversed(invoices.data):
            lines = "; ".join(
                f"{line.description} {line.amount / 100:+.2f}" for line in inv.lines.data
            )
            table.add_row(
                inv.number or "-",
                inv.billing_reason,
                inv.status,
                f"{inv.total / 100:.2f}",
                f"{inv.amount_paid / 100:.2f}",
                lines,
            )
        console.print(table)
        events = client.v1.events.list({"limit": 100})
        kinds = sorted({e.type for e in events.data})
        console.print(f"{len(events.data)} events: {', '.join(kinds)}")
    console.print("[green]demo finished[/]")
    return 0
