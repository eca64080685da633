"""`harness up` as users run it: TLS trust, webhook hosts, credentials, remote serving, state,
and no key material left behind."""

from __future__ import annotations

import os
import signal
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import certifi
import httpx
import pytest
from simple_salesforce import Salesforce

from harness.up import UpError, UpOptions, warnings_for
from simulators.common.world import World
from tests.common.helpers import ROOT, harness_up


def _control(doc: dict, system: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    url = doc["systems"][system]["url"]
    verify = (
        ssl.create_default_context(cafile=doc["ca_bundle"]) if url.startswith("https") else True
    )
    return httpx.request(
        method,
        f"{url}{path}",
        headers={"X-Sim-Control-Token": doc["control_token"]},
        verify=verify,
        trust_env=False,
        timeout=10,
        **kwargs,  # type: ignore[arg-type]
    )


def test_up_serves_tls_users_can_trust_limits_webhooks_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with harness_up(tmp_path, "--webhook-host", "hooks.example") as (proc, doc):
        bundle = Path(doc["ca_bundle"])
        directory = bundle.parent
        assert directory.name.startswith("finsim-ca-")
        # The bundle: the public roots first, then the local CA, whole.
        text = bundle.read_text()
        assert Path(certifi.where()).read_text().strip() in text
        assert text.rstrip().endswith(Path(doc["ca_cert"]).read_text().strip())
        assert not (directory / "server.key").exists(), "the private key outlived start-up"
        assert (doc["credentials"], doc["webhook_hosts"]) == ("random", ["hooks.example"])

        # The real simple-salesforce, trusting the CRM through REQUESTS_CA_BUNDLE alone.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        crm = doc["systems"]["crm"]
        assert crm["url"].startswith("https://")
        sf = Salesforce(instance_url=crm["url"], session_id=crm["credentials"]["session_id"])
        created = sf.Account.create({"Name": "Trusted"})
        assert (
            sf.query(f"SELECT Name FROM Account WHERE Id = '{created['id']}'")["records"][0]["Name"]
            == "Trusted"
        )

        for system in ("crm", "erp", "revrec"):
            refused = _control(
                doc, system, "POST", "/_sim/webhooks/endpoints", json={"url": "http://10.0.0.9/h"}
            )
            assert refused.status_code == 400, refused.text
            listed = _control(
                doc,
                system,
                "POST",
                "/_sim/webhooks/endpoints",
                json={"url": "https://hooks.example/h"},
            )
            assert listed.status_code == 201, listed.text

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert not directory.exists(), "temporary key material left behind after SIGTERM"


def test_state_keeps_objects_and_credentials_across_starts(tmp_path: Path) -> None:
    state = tmp_path / "world.json"
    with harness_up(tmp_path, "--seed", "3", "--tls", "", "--state", str(state)) as (proc, doc):
        revrec = doc["systems"]["revrec"]
        auth = {"Authorization": f"Bearer {revrec['credentials']['token']}"}
        r = httpx.put(
            f"{revrec['url']}/v1/entities/kept",
            json={"functional_currency": "usd"},
            headers=auth,
            trust_env=False,
        )
        assert r.status_code == 201, r.text
        first = doc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o600  # it holds credentials
    with harness_up(tmp_path, "--tls", "", "--state", str(state)) as (proc, doc):
        assert doc["seed"] == 3 and doc["control_token"] == first["control_token"]
        revrec = doc["systems"]["revrec"]
        assert revrec["credentials"] == first["systems"]["revrec"]["credentials"]
        r = httpx.get(
            f"{revrec['url']}/v1/entities/kept",
            headers={"Authorization": f"Bearer {revrec['credentials']['token']}"},
            trust_env=False,
        )
        assert r.status_code == 200, r.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    # Without the state file, the same seed gives other credentials; fixed ones follow the seed.
    with harness_up(tmp_path, "--seed", "3", "--tls", "", "--fixed-credentials") as (_, doc):
        assert doc["credentials"] == "fixed"
        assert doc["control_token"] != first["control_token"]
        assert doc["control_token"] == World(3, fixed_credentials=True).control_token


def test_a_remote_host_needs_allow_remote_and_is_warned_about() -> None:
    with pytest.raises(UpError, match="--allow-remote"):
        warnings_for(UpOptions(host="0.0.0.0"))
    assert warnings_for(UpOptions(host="::1")) == []
    [warning] = warnings_for(UpOptions(host="192.0.2.7", allow_remote=True))
    assert "192.0.2.7" in warning
    [warning] = warnings_for(UpOptions(webhook_hosts=["*"]))
    assert "any host" in warning
    # On the command line: a one-line reason, exit status 1, no traceback, nothing served.
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "up", "--host", "0.0.0.0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2  # a usage error (harness.exits.USAGE)
    assert "--allow-remote" in done.stderr and "Traceback" not in done.stderr + done.stdout
