"""Invoice and invoice-item handlers."""

from __future__ import annotations

from simulators.billing import params, render
from simulators.billing.handlers.base import HandlerBase, Json
from simulators.common.app import Call, Reply


class InvoiceHandlers(HandlerBase):
    def create_invoice(self, call: Call) -> Reply:
        b = call.body
        inv = self.b.create_invoice(
            customer=b["customer"],
            subscription=b.get("subscription") or None,
            pending_invoice_items_behavior=b.get("pending_invoice_items_behavior", "exclude"),
            collection_method=b.get("collection_method"),
            description=b.get("description"),
            metadata=params.metadata(b),
            auto_advance=b.get("auto_advance", False),
            default_tax_rates=params.id_list(b, "default_tax_rates"),
            automatic_tax=params.enabled(b, "automatic_tax") is True,
            discounts=params.discounts(b) if "discounts" in b else None,
        )
        return self._ok(call, render.invoice(self.s, inv))

    def list_invoices(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_invoices(
            customer=q.get("customer"),
            subscription=q.get("subscription"),
            status=q.get("status"),
            created=q.get("created"),
        )
        return self._list(call, listing, lambda i: render.invoice(self.s, i), "/v1/invoices")

    def retrieve_invoice(self, call: Call) -> Reply:
        return self._ok(call, render.invoice(self.s, self.b.invoice(call.path["invoice"])))

    def update_invoice(self, call: Call) -> Reply:
        b = call.body
        inv = self.b.update_invoice(
            call.path["invoice"],
            description=params.opt_text(b, "description"),
            auto_advance=params.opt(b, "auto_advance"),
            metadata=params.metadata_update(b),
            default_tax_rates=params.opt_id_list(b, "default_tax_rates"),
            automatic_tax=params.enabled(b, "automatic_tax"),
            discounts=params.opt_discounts(b),
        )
        return self._ok(call, render.invoice(self.s, inv))

    def finalize_invoice(self, call: Call) -> Reply:
        inv = self.b.finalize_invoice(
            call.path["invoice"], auto_advance=params.opt(call.body, "auto_advance")
        )
        return self._ok(call, render.invoice(self.s, inv))

    def pay_invoice(self, call: Call) -> Reply:
        b = call.body
        inv = self.b.pay_invoice(
            call.path["invoice"],
            paid_out_of_band=b.get("paid_out_of_band", False),
            payment_method=b.get("payment_method") or None,
        )
        return self._ok(call, render.invoice(self.s, inv))

    def void_invoice(self, call: Call) -> Reply:
        return self._ok(call, render.invoice(self.s, self.b.void_invoice(call.path["invoice"])))

    def mark_invoice_uncollectible(self, call: Call) -> Reply:
        inv = self.b.mark_uncollectible(call.path["invoice"])
        return self._ok(call, render.invoice(self.s, inv))

    def create_invoice_preview(self, call: Call) -> Reply:
        # Rendered inside the preview so the throw-away state is still there.
        box: list[Json] = []
        b = call.body
        self.b.preview_invoice(
            lambda inv: box.append(render.invoice(self.s, inv, preview_id=f"upcoming_{inv.id}")),
            customer=b.get("customer") or None,
            subscription=b.get("subscription") or None,
            changes=params.preview_changes(b),
        )
        return self._ok(call, box[0])

    def list_invoice_line_items(self, call: Call) -> Reply:
        inv = self.b.invoice(call.path["invoice"])
        return self._page(
            call,
            inv.lines,
            lambda line: render.invoice_line(self.s, line),
            f"/v1/invoices/{inv.id}/lines",
        )

    def create_invoice_item(self, call: Call) -> Reply:
        b = call.body
        period = b.get("period")
        ii = self.b.create_invoice_item(
            customer=b["customer"],
            price=(b.get("pricing") or {}).get("price") or b.get("price") or None,
            quantity=b.get("quantity", 1),
            amount=b.get("amount"),
            currency=b.get("currency"),
            period=(period["start"], period["end"]) if period else None,
            description=b.get("description"),
            subscription=b.get("subscription") or None,
            invoice=b.get("invoice") or None,
            metadata=params.metadata(b),
            tax_rates=params.id_list(b, "tax_rates"),
            discounts=params.discounts(b),
            discountable=b.get("discountable", True),
        )
        return self._ok(call, render.invoice_item(self.s, ii))

    def list_invoice_items(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_invoice_items(
            customer=q.get("customer"), invoice=q.get("invoice"), pending=q.get("pending")
        )
        return self._list(
            call, listing, lambda ii: render.invoice_item(self.s, ii), "/v1/invoiceitems"
        )

    def retrieve_invoice_item(self, call: Call) -> Reply:
        ii = self.b.invoice_item(call.path["invoiceitem"])
        return self._ok(call, render.invoice_item(self.s, ii))

    def delete_invoice_item(self, call: Call) -> Reply:
        ii = self.b.delete_invoice_item(call.path["invoiceitem"])
        return {"id": ii.id, "object": "invoiceitem", "deleted": True}, 200
