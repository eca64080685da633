"""Run the connector: ``python -m examples.stripe_netsuite_connector`` (settings: README)."""

from __future__ import annotations

import logging
import os
import sqlite3
import sys

import uvicorn

from .catchup import CatchUp
from .netsuite import NetSuite
from .posting import Poster
from .settings import Settings, SettingsError
from .stripe_source import StripeSource
from .throttle import Gate
from .web import create_app
from .workers import Workers
from .workqueue import WorkQueue


def _gate(queue: WorkQueue, vendor: str) -> Gate:
    return Gate(vendor, closed_until=queue.hold_until(vendor), remember=queue.remember_hold)


def main() -> int:
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for chatty in ("stripe", "httpx"):  # a line per request drowns what the connector did
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        queue = WorkQueue(settings.database)
    except (OSError, sqlite3.Error) as exc:
        print(f"cannot open CONNECTOR_DB {settings.database}: {exc}", file=sys.stderr)
        return 2
    erp = NetSuite(
        settings.netsuite_base_url,
        settings.netsuite_access_token,
        gate=_gate(queue, "netsuite"),
        verify=settings.netsuite_ca_bundle or True,
    )
    source = StripeSource(
        settings.stripe_api_base, settings.stripe_secret_key, gate=_gate(queue, "stripe")
    )
    workers = Workers(queue, Poster(source, erp).run, count=settings.workers)
    workers.start()
    catch_up = CatchUp(source, queue)
    catch_up.start()
    app = create_app(queue, settings.stripe_signing_secret, catch_up.done)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="off"
        )
    )
    logging.getLogger("connector").info("listening on 127.0.0.1:%d", settings.port)
    try:
        server.run()  # returns on SIGTERM / SIGINT
    finally:
        workers.stop(timeout_s=3.0)  # within the harness's stop_timeout_s
        erp.close()
        queue.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
