"""Credit-note handlers."""

from __future__ import annotations

from simulators.billing import params, render
from simulators.billing.handlers.base import HandlerBase
from simulators.common.app import Call, Reply


class CreditNoteHandlers(HandlerBase):
    def create_credit_note(self, call: Call) -> Reply:
        b = call.body
        cn = self.b.create_credit_note(
            invoice=b["invoice"],
            lines=params.credit_lines(b.get("lines")),
            amount=b.get("amount"),
            refund_amount=b.get("refund_amount", 0),
            credit_amount=b.get("credit_amount", 0),
            out_of_band_amount=b.get("out_of_band_amount", 0),
            reason=b.get("reason"),
            memo=b.get("memo"),
            metadata=params.metadata(b),
        )
        return self._ok(call, render.credit_note(self.s, cn))

    def list_credit_notes(self, call: Call) -> Reply:
        q = call.query
        listing = self.b.list_credit_notes(invoice=q.get("invoice"), customer=q.get("customer"))
        return self._list(
            call, listing, lambda cn: render.credit_note(self.s, cn), "/v1/credit_notes"
        )

    def retrieve_credit_note(self, call: Call) -> Reply:
        return self._ok(call, render.credit_note(self.s, self.b.credit_note(call.path["id"])))

    def void_credit_note(self, call: Call) -> Reply:
        return self._ok(call, render.credit_note(self.s, self.b.void_credit_note(call.path["id"])))
