"""`make bench`: requests/s and latency of billing's hot operations, and the bare ceiling."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out"
DURATION_S = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = 32
TARGET_GET, TARGET_POST = 2500, 2000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pin(core: int) -> list[str]:
    # Server and load generator on separate cores where there are two.
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and os.cpu_count() else []


def _wait(url: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, headers=headers, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not come up")


def _wrk(url: str, method: str, body: str, headers: dict[str, str]) -> dict[str, float]:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
    lines = [f'wrk.method = "{method}"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    if "{n}" in body:
        # A counter per request: creates that need unique keys never collide.
        lines += [
            f"template = {json.dumps(body)}",
            "counter = 0",
            "request = function()",
            "  counter = counter + 1",
            '  local body = template:gsub("{n}", tostring(counter))',
            "  return wrk.format(nil, nil, nil, body)",
            "end",
        ]
    elif body:
        lines.append(f"wrk.body = {json.dumps(body)}")
    script.write("\n".join(lines))
    script.close()
    out = subprocess.run(
        [
            *_pin(1),
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{DURATION_S}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)

    def ms(label: str) -> float:
        match = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def _seed(url: str, key: str) -> dict[str, str]:
    h = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=h) as c:
        cus = c.post(
            "/v1/customers",
            data={
                "name": "Bench",
                "payment_method": "pm_card_visa",
                "invoice_settings[default_payment_method]": "pm_card_visa",
            },
        ).json()["id"]
        prod = c.post("/v1/products", data={"name": "Seats"}).json()["id"]
        price = c.post(
            "/v1/prices",
            data={
                "product": prod,
                "currency": "usd",
                "unit_amount": "1000",
                "recurring[interval]": "month",
            },
        ).json()["id"]
        meter = c.post(
            "/v1/billing/meters",
            data={
                "display_name": "API calls",
                "event_name": "api_call",
                "default_aggregation[formula]": "sum",
            },
        ).json()
        sub = c.post(
            "/v1/subscriptions",
            data={"customer": cus, "items[0][price]": price, "items[0][quantity]": "2"},
        ).json()
        for n in range(30):
            c.post("/v1/customers", data={"name": f"Filler {n}"})
        return {
            "customer": cus,
            "price": price,
            "invoice": sub["latest_invoice"],
            "meter": meter["id"],
        }


def main() -> int:
    if not shutil.which("wrk"):
        print("make bench needs wrk (Debian package 'wrk'): apt-get install -y wrk")
        return 2
    results: dict[str, Any] = {
        "duration_s": DURATION_S,
        "connections": CONNECTIONS,
        "cpus": os.cpu_count(),
        "operations": {},
    }
    ready = Path(tempfile.mkdtemp()) / "ready.json"
    server = subprocess.Popen(
        [
            *_pin(0),
            str(ROOT / ".venv/bin/harness"),
            "up",
            *(
                arg
                for name in ("billing", "crm", "erp", "revrec")
                for arg in ("--port", f"{name}=0")
            ),
            "--ready-json",
            str(ready),
            "--no-response-validation",
            "--seed",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bare_port = _free_port()
    bare = subprocess.Popen(
        [*_pin(0), sys.executable, "-m", "bench.bare_app", str(bare_port)], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        url = info["systems"]["billing"]["url"]
        key = info["systems"]["billing"]["credentials"]["api_key"]
        control = {"X-Sim-Control-Token": info["control_token"]}
        # The fault layer on with a rule that never fires here: its matching cost is measured.
        httpx.post(f"{url}/_sim/faults", json={"system": "crm", "kind": "outage"}, headers=control)
        ids = _seed(url, key)
        auth = {"Authorization": f"Bearer {key}"}
        form = {**auth, "Content-Type": "application/x-www-form-urlencoded"}
        ops = {
            "create customer (POST)": ("POST", "/v1/customers", "name=Load&email=l%40x.io", form),
            "retrieve customer (GET)": ("GET", f"/v1/customers/{ids['customer']}", "", auth),
            "retrieve invoice (GET)": ("GET", f"/v1/invoices/{ids['invoice']}", "", auth),
            "list customers, page 2 (GET)": (
                "GET",
                f"/v1/customers?limit=10&starting_after={ids['customer']}",
                "",
                auth,
            ),
            "meter event (POST)": (
                "POST",
                "/v1/billing/meter_events",
                f"event_name=api_call&payload[stripe_customer_id]="
                f"{ids['customer']}&payload[value]=1",
                form,
            ),
            "create subscription (POST)": (
                "POST",
                "/v1/subscriptions",
                f"customer={ids['customer']}&items[0][price]={ids['price']}",
                form,
            ),
        }
        for name, (method, path, body, headers) in ops.items():
            results["operations"][f"billing: {name}"] = _wrk(url + path, method, body, headers)
        for name, (base, method, path, body, headers) in _other_systems(info).items():
            results["operations"][name] = _wrk(base + path, method, body, headers)
        _wait(f"http://127.0.0.1:{bare_port}/", {})
        results["bare"] = {
            "billing: create customer (POST)": _wrk(
                f"http://127.0.0.1:{bare_port}/v1/customers",
                "POST",
                "name=Load",
                {"Content-Type": "application/x-www-form-urlencoded"},
            ),
        }
        bare_cus = httpx.post(
            f"http://127.0.0.1:{bare_port}/v1/customers", data={"name": "x"}
        ).json()["id"]
        results["bare"]["billing: retrieve customer (GET)"] = _wrk(
            f"http://127.0.0.1:{bare_port}/v1/customers/{bare_cus}", "GET", "", {}
        )
    finally:
        for proc in (server, bare):
            proc.terminate()
            proc.wait(timeout=10)
    _report(results)
    OUT.mkdir(exist_ok=True)
    (OUT / "bench.json").write_text(json.dumps(results, indent=2))
    print(f"saved {OUT / 'bench.json'}")
    return 0


def _other_systems(info: dict[str, Any]) -> dict[str, tuple[str, str, str, str, dict[str, str]]]:
    """Hot operations of CRM, ERP and revrec, with the same counters and fault layer."""
    systems = info["systems"]
    crm, erp, rr = systems["crm"], systems["erp"], systems["revrec"]
    crm_auth = {
        "Authorization": f"Bearer {crm['credentials']['session_id']}",
        "Content-Type": "application/json",
    }
    erp_auth = {
        "Authorization": f"Bearer {erp['credentials']['token']}",
        "Content-Type": "application/json",
    }
    rr_auth = {
        "Authorization": f"Bearer {rr['credentials']['token']}",
        "Content-Type": "application/json",
    }
    sobjects = "/services/data/v60.0/sobjects"
    record = "/services/rest/record/v1"
    with httpx.Client(verify=False, trust_env=False, timeout=10) as c:
        c.post(f"{crm['url']}{sobjects}/Account", json={"Name": "Seed"}, headers=crm_auth)
        c.put(f"{rr['url']}/v1/entities/us", json={"functional_currency": "usd"}, headers=rr_auth)
        contract = c.post(
            f"{rr['url']}/v1/contracts",
            headers=rr_auth,
            json={
                "external_id": "seed",
                "customer": "cus_1",
                "entity": "us",
                "currency": "usd",
                "lines": [
                    {
                        "external_id": "l1",
                        "product": "pro",
                        "pattern": "ratable",
                        "unit_price_minor": 120000,
                        "service_start_at": 1767225600,
                        "service_end_at": 1798761600,
                    }
                ],
            },
        ).json()
    contract_id = contract.get("id", "seed")
    line = (
        '{"external_id": "l{n}", "product": "pro", "pattern": "ratable", '
        '"unit_price_minor": 120000, "service_start_at": 1767225600, '
        '"service_end_at": 1798761600}'
    )
    journal = (
        '{"subsidiary": {"externalId": "US"}, "line": {"items": ['
        '{"account": {"externalId": "1000"}, "debit": 10.01}, '
        '{"account": {"externalId": "4000"}, "credit": 10.01}]}}'
    )
    return {
        "crm: create Account (POST)": (
            crm["url"],
            "POST",
            f"{sobjects}/Account",
            '{"Name": "Load {n}"}',
            crm_auth,
        ),
        "crm: SOQL query (GET)": (
            crm["url"],
            "GET",
            "/services/data/v60.0/query?q=SELECT+Id,Name+FROM+Account+LIMIT+10",
            "",
            crm_auth,
        ),
        "erp: create customer (POST)": (
            erp["url"],
            "POST",
            f"{record}/customer",
            '{"companyName": "Load {n}", "subsidiary": {"externalId": "US"}}',
            erp_auth,
        ),
        "erp: journal entry (POST)": (
            erp["url"],
            "POST",
            f"{record}/journalEntry",
            journal,
            erp_auth,
        ),
        "erp: SuiteQL (POST)": (
            erp["url"],
            "POST",
            "/services/rest/query/v1/suiteql",
            '{"q": "SELECT id, companyname FROM customer WHERE id < 11"}',
            {**erp_auth, "Prefer": "transient"},
        ),
        "revrec: create contract (POST)": (
            rr["url"],
            "POST",
            "/v1/contracts",
            '{"external_id": "c{n}", "customer": "cus_1", '
            '"entity": "us", "currency": "usd", "lines": [' + line + "]}",
            rr_auth,
        ),
        "revrec: schedule (GET)": (
            rr["url"],
            "GET",
            f"/v1/contracts/{contract_id}/schedule",
            "",
            rr_auth,
        ),
    }


def _report(results: dict[str, Any]) -> None:
    print(
        f"simulators on one core, {CONNECTIONS} connections, {DURATION_S} s per operation, "
        "request validation + journal + fault layer on, response validation off"
    )
    print(
        f"{'operation':40} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>8} {'errors':>6} "
        f"{'target':>6} {'vs target':>9} {'vs bare':>7}"
    )
    for name, r in results["operations"].items():
        target = TARGET_POST if "POST" in name else TARGET_GET
        bare = results["bare"].get(name)
        ratio_bare = f"{r['rps'] / bare['rps']:.2f}" if bare else "-"
        print(
            f"{name:40} {r['rps']:7.0f} {r['p50_ms']:7.2f} {r['p99_ms']:8.2f} "
            f"{r['errors']:6.0f} {target:6d} {r['rps'] / target:9.2f} {ratio_bare:>7}"
        )
    for name, r in results["bare"].items():
        print(f"bare Starlette, {name:32} {r['rps']:7.0f} {r['p50_ms']:7.2f} {r['p99_ms']:8.2f}")


if __name__ == "__main__":
    sys.exit(main())
