"""A Stripe → NetSuite connector: finalised invoices, payments and credit notes into the ERP."""
