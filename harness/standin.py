"""The stand-in: the reference flow's integration playing every hand-off the team's does not own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.config import HarnessConfig, IntegrationConfig, load_config
from harness.handoffs import HANDOFFS, LINKS
from harness.resources import reference_config


def reference_root() -> Path:
    """The directory ``python -m examples.reference_integration`` runs from."""
    return Path(__file__).resolve().parents[1]


def missing_handoffs(config: HarnessConfig) -> list[str]:
    """The hand-offs of the flow the integration under test does not own, in flow order."""
    return [h for h, handoff in HANDOFFS.items() if h not in config.scope.owns and handoff.standin]


def effective_links(config: HarnessConfig) -> dict[str, Any]:
    """Every link as it is in force (declared, else the reference's), for a stand-in to follow."""
    links = config.links
    return {
        "links": {link_id: links.link(link_id).model_dump(exclude_none=True) for link_id in LINKS},
        "crm_writeback": dict(links.crm_writeback),
        "billing_writeback": dict(links.billing_writeback),
        "erp_items": dict(links.erp_items),
    }


def standin_config(config: HarnessConfig) -> IntegrationConfig | None:
    """The reference integration, as its own harness.toml declares it, with only the missing
    hand-offs on, or None when the integration under test owns them all (or the declaration
    turns stand-ins off)."""
    missing = missing_handoffs(config)
    if not missing or not config.scope.standin:
        return None
    reference = load_config(reference_config()).integration
    assert reference is not None  # the shipped declaration always has one
    env = {
        **reference.env,
        "INBOX_PATH": "{run_dir}/standin-inbox.sqlite",
        "FINSIM_HANDOFFS": ",".join(missing),
        "FINSIM_LINKS": _escaped(json.dumps(effective_links(config))),
        "FINSIM_ACTOR": "standin",
        "FINSIM_CONTROL_TOKEN": "{control_token}",
    }
    return reference.model_copy(update={"cwd": str(reference_root()), "env": env})


def _escaped(text: str) -> str:
    """Braces in a literal env value, kept literal through the template renderer."""
    return text.replace("{", "{{").replace("}", "}}")
