"""CRM simulator: a Salesforce REST API subset on the shared kernel."""
