"""The ERP simulator: a NetSuite REST record subset with a general ledger behind it."""
