"""The stand-in: the reference flow's integration playing every hand-off the team's does not own."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from harness.config import HarnessConfig, IntegrationConfig, Probe, Receiver
from harness.handoffs import HANDOFFS, LINKS


def reference_root() -> Path:
    """The directory ``python -m examples.reference_integration`` runs from."""
    return Path(__file__).resolve().parents[1]


def missing_handoffs(config: HarnessConfig) -> list[str]:
    """The hand-offs of the flow the integration under test does not own, in flow order."""
    return [h for h in HANDOFFS if h not in config.scope.owns]


def effective_links(config: HarnessConfig) -> dict[str, Any]:
    """Every link as it is in force (declared, else the reference's), for a stand-in to follow."""
    links = config.links
    return {
        "links": {link_id: links.link(link_id).model_dump(exclude_none=True) for link_id in LINKS},
        "crm_writeback": dict(links.crm_writeback),
        "erp_items": dict(links.erp_items),
    }


def standin_config(config: HarnessConfig) -> IntegrationConfig | None:
    """The reference integration with only the missing hand-offs on, or None when the
    integration under test owns them all (or the declaration turns stand-ins off)."""
    missing = missing_handoffs(config)
    if not missing or not config.scope.standin:
        return None
    base = "http://127.0.0.1:{port}"
    return IntegrationConfig(
        command=[sys.executable, "-m", "examples.reference_integration"],
        cwd=str(reference_root()),
        env={
            "PORT": "{port}",
            "INBOX_PATH": "{run_dir}/standin-inbox.sqlite",
            "STRIPE_API_BASE": "{billing.url}",
            "STRIPE_API_KEY": "{billing.api_key}",
            "STRIPE_WEBHOOK_SECRET": "{billing.webhook_secret}",
            "SF_INSTANCE_URL": "{crm.url}",
            "SF_SESSION_ID": "{crm.session_id}",
            "CRM_WEBHOOK_SECRET": "{crm.webhook_secret}",
            "REQUESTS_CA_BUNDLE": "{ca_bundle}",
            "NETSUITE_URL": "{erp.url}",
            "NETSUITE_TOKEN": "{erp.token}",
            "REVREC_URL": "{revrec.url}",
            "REVREC_TOKEN": "{revrec.token}",
            "REVREC_WEBHOOK_SECRET": "{revrec.webhook_secret}",
            "FINSIM_HANDOFFS": ",".join(missing),
            "FINSIM_LINKS": _escaped(json.dumps(effective_links(config))),
            "FINSIM_ACTOR": "standin",
            "FINSIM_CONTROL_TOKEN": "{control_token}",
        },
        ready=Probe(http=f"{base}/healthz", timeout_s=30),
        idle=Probe(http=f"{base}/idle"),
        webhooks={
            "billing": Receiver(url=f"{base}/webhooks/stripe"),
            "crm": Receiver(url=f"{base}/webhooks/crm"),
            "revrec": Receiver(url=f"{base}/webhooks/revrec", events=["period.closed"]),
        },
        stop_timeout_s=5,
    )


def _escaped(text: str) -> str:
    """Braces in a literal env value, kept literal through the template renderer."""
    return text.replace("{", "{{").replace("}", "}}")
