"""The bench server: all four simulators (or the bare app) on one process, optionally preloaded.

``python -m bench.serve READY_JSON [--preload N] [--no-gc-tuning] [--bare]
[--validate-responses]`` serves a world as ``harness up`` does (CRM over TLS, the webhook
dispatcher running, response validation off as in load runs unless asked for), first filling
its stores with N objects when asked, and writes the ready document once serving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.ops import build_world
from bench.preload import preload
from simulators.common.server import MultiServer, Site, new_event_loop
from simulators.common.tls import LocalCA


def rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc), else its peak."""
    try:
        with open(f"/proc/{os.getpid()}/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("ready", type=Path)
    parser.add_argument("--preload", type=int, default=0)
    parser.add_argument("--no-gc-tuning", action="store_true")
    parser.add_argument("--bare", action="store_true")
    # As default `harness up` serves: the simulators' answers checked against their contracts.
    parser.add_argument("--validate-responses", action="store_true")
    args = parser.parse_args()
    info: dict[str, Any] = {"pid": os.getpid()}
    w = build_world(validate_responses=args.validate_responses)
    rss_before = rss_bytes()
    started = time.perf_counter()
    info["preloaded"] = preload(w, args.preload) if args.preload else {}
    info["preload_s"] = round(time.perf_counter() - started, 1)
    info["rss_before_preload"] = rss_before
    info["rss_after_preload"] = rss_bytes()
    ca = LocalCA.create(Path(tempfile.mkdtemp(prefix="finsim-bench-ca-")))
    apps: dict[str, Any] = w.apps
    if args.bare:
        from bench.bare_app import make_app

        apps = {name: make_app(sim) for name, sim in w.sims.items()}
    sites = [Site(name, app, 0, tls=name == "crm") for name, app in apps.items()]
    background = [w.world.dispatcher.run]
    info["credentials"] = w.credentials
    info["control_token"] = None if args.bare else w.world.control_token
    server = MultiServer(
        sites,
        ca=ca,
        background=background,
        gc_tuning=not args.no_gc_tuning,
    )

    async def run() -> None:
        await server.start()
        info["urls"] = server.urls
        tmp = args.ready.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        tmp.replace(args.ready)
        await server.serve_forever()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
