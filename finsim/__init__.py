"""finsim: the simulators and harness for SaaS-to-ERP finance integrations, as a library.

``with finsim.serve("billing", "erp") as sims: sims.billing.url, sims.billing.api_key`` serves
simulators on free loopback ports for a block, like moto; the pytest plugin's
``finsim_simulators`` fixture does the same per test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.served import ServedSystem, Simulators, serve

__all__ = ["ServedSystem", "Simulators", "__version__", "serve"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so `import finsim` costs nothing until something is served.
    if name in ("serve", "Simulators", "ServedSystem"):
        from harness import served

        return getattr(served, name)
    if name == "__version__":
        from importlib.metadata import version

        return version("finsim-harness")
    raise AttributeError(f"module 'finsim' has no attribute {name!r}")
