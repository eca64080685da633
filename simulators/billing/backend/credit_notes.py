"""Credit notes: issued against open (pre-payment) or paid (post-payment) invoices, voided."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from simulators.billing import errors, render
from simulators.billing.amounts import LineTax, RateSpec, line_taxes, round_half_up
from simulators.billing.backend.base import BackendBase, Listing
from simulators.billing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine
from simulators.billing.params import CreditLineSpec


class CreditNoteOps(BackendBase):
    def create_credit_note(
        self,
        *,
        invoice: str,
        lines: list[CreditLineSpec] | None = None,
        amount: int | None = None,
        refund_amount: int = 0,
        credit_amount: int = 0,
        out_of_band_amount: int = 0,
        reason: str | None = None,
        memo: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> CreditNote:
        inv = self.invoice(invoice)
        if inv.status not in ("open", "paid"):
            raise errors.state(
                f"Credit notes need an open or paid invoice (status {inv.status}).", "invoice"
            )
        now = self.now(inv.test_clock)
        cn_lines = _credit_lines(inv, lines, amount, memo, self._taxes_of)
        total = sum(line.total for line in cn_lines)
        if total <= 0:
            raise errors.invalid("A credit note must credit a positive amount.", "amount")
        credited = sum(
            cn.total
            for cn in self.store.credit_notes.where("invoice", inv.id)
            if cn.status == "issued"
        )
        if credited + total > inv.total:
            raise errors.invalid(
                f"The credit note total {total} exceeds what remains "
                f"creditable on the invoice ({inv.total - credited}).",
                "amount",
                code="credit_note_amount_too_large",
            )
        refund, credit, oob = refund_amount, credit_amount, out_of_band_amount
        if inv.status == "open":
            if refund or oob:
                raise errors.invalid(
                    "An unpaid invoice can only be credited before payment.",
                    "refund_amount" if refund else "out_of_band_amount",
                )
            # Pre-payment reduces what is owed, never below zero; any excess is a balance credit.
            pre = min(total - credit, inv.amount_remaining)
            credit = total - pre
            kind = "pre_payment"
        else:
            pre = 0
            if refund + credit + oob == 0:
                credit = total
            if refund + credit + oob != total:
                raise errors.invalid(
                    "refund_amount, credit_amount and out_of_band_amount must "
                    "add up to the credit note total.",
                    "credit_amount",
                )
            if refund > inv.amount_paid - sum(
                cn.refund_amount
                for cn in self.store.credit_notes.where("invoice", inv.id)
                if cn.status == "issued"
            ):
                raise errors.invalid("Cannot refund more than was paid.", "refund_amount")
            kind = "post_payment"
        cn = CreditNote(
            self._ids("cn"),
            inv.id,
            inv.customer,
            f"{inv.number}-CN-{self.world.ids.counter('cn:' + inv.id):02d}",
            inv.currency,
            now,
            cn_lines,
            kind,
            pre,
            refund,
            credit,
            oob,
            reason=reason,
            memo=memo,
            metadata=dict(metadata or {}),
        )
        for line in cn.lines:
            line.id = self._ids("cnli")
        self.store.credit_notes[cn.id] = cn
        before = render.invoice(self.store, inv)
        inv.pre_payment_credit_notes_amount += pre
        inv.post_payment_credit_notes_amount += total - pre
        inv.amount_due -= pre
        self.store.customers[inv.customer].balance -= credit
        self.event("credit_note.created", render.credit_note(self.store, cn), now)
        if inv.status == "open" and inv.amount_remaining == 0:
            self.billing._mark_paid(inv, now, out_of_band=True)
        else:
            self._updated("invoice.updated", before, render.invoice(self.store, inv), now)
        return cn

    def list_credit_notes(
        self, *, invoice: str | None = None, customer: str | None = None
    ) -> Listing:
        return Listing(
            self.store.credit_notes,
            lambda cn: invoice in (None, cn.invoice) and customer in (None, cn.customer),
        )

    def credit_note(self, cn_id: str) -> CreditNote:
        cn = self.store.credit_notes.get(cn_id)
        if cn is None:
            raise errors.no_such("credit note", cn_id)
        return cn

    def _taxes_of(self, target: InvoiceLine, credited: int) -> CreditNoteLine:
        """A credit of ``credited`` (gross) on ``target``: its share of the line's discounts,
        and tax on what is left at the line's rates, rounded as the line's were."""
        discounts = {
            d: round_half_up(Fraction(amount * credited, target.amount))
            for d, amount in target.discount_amounts.items()
            if target.amount
        }
        net = credited - sum(discounts.values())
        standard = [t for t in target.taxes if t.taxability_reason == "standard_rated"]
        specs = [
            RateSpec(t.tax_rate, self.store.tax_rates[t.tax_rate].percentage, t.inclusive)
            for t in standard
        ]
        taxes = line_taxes(net, specs) + [
            LineTax(0, t.tax_rate, t.inclusive, net, t.taxability_reason)
            for t in target.taxes
            if t.taxability_reason != "standard_rated"
        ]
        return CreditNoteLine(
            "", credited, "invoice_line_item", None, None, None, target.id, taxes, discounts
        )

    def void_credit_note(self, cn_id: str) -> CreditNote:
        cn = self.credit_note(cn_id)
        if cn.status == "void":
            raise errors.state("This credit note is already void.")
        if cn.refund_amount:
            raise errors.state("A credit note with a refund cannot be voided.")
        inv = self.store.invoices[cn.invoice]
        if (
            cn.pre_payment_amount
            and inv.status == "paid"
            and inv.paid_out_of_band
            and inv.amount_paid == 0
        ):
            raise errors.state("The invoice this credit note settled is closed.")
        now = self.now(inv.test_clock)
        cn.status = "void"
        cn.voided_at = now
        inv.pre_payment_credit_notes_amount -= cn.pre_payment_amount
        inv.post_payment_credit_notes_amount -= cn.total - cn.pre_payment_amount
        inv.amount_due += cn.pre_payment_amount
        self.store.customers[inv.customer].balance += cn.credit_amount
        self.event("credit_note.voided", render.credit_note(self.store, cn), now)
        return cn


def _credit_lines(
    inv: Invoice,
    specs: list[CreditLineSpec] | None,
    amount: int | None,
    memo: str | None,
    credit: Callable[[InvoiceLine, int], CreditNoteLine],
) -> list[CreditNoteLine]:
    if specs:
        lines = []
        by_id = {line.id: line for line in inv.lines}
        for n, spec in enumerate(specs):
            if spec.type == "invoice_line_item":
                target = by_id.get(spec.invoice_line_item or "")
                if target is None:
                    raise errors.invalid(
                        "Unknown invoice line item.", f"lines[{n}][invoice_line_item]"
                    )
                if spec.amount is not None:
                    line_amount = spec.amount
                elif spec.quantity is not None and target.quantity:
                    line_amount = target.amount * spec.quantity // target.quantity
                else:
                    line_amount = target.amount
                if not 0 < line_amount <= target.amount:
                    raise errors.invalid(
                        "The amount must be positive and at most the line amount.",
                        f"lines[{n}][amount]",
                    )
                credited = credit(target, line_amount)
                credited.description = spec.description or target.description
                credited.quantity = spec.quantity
                lines.append(credited)
            else:
                if spec.unit_amount is None:
                    raise errors.missing_param(f"lines[{n}][unit_amount]")
                quantity = 1 if spec.quantity is None else spec.quantity
                lines.append(
                    CreditNoteLine(
                        "",
                        spec.unit_amount * quantity,
                        spec.type,
                        spec.description,
                        quantity,
                        spec.unit_amount,
                        None,
                    )
                )
        if amount is not None and amount != sum(x.amount for x in lines):
            raise errors.invalid("amount must equal the sum of the lines.", "amount")
        return lines
    if amount is None:
        raise errors.missing_param("amount")
    return [CreditNoteLine("", amount, "custom_line_item", memo or "Credit", 1, amount, None)]
