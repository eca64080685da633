"""The integration under test as a real child process: readiness, crashes, kill -9, restart."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from harness.config import (
    ConfigError,
    IntegrationConfig,
    Probe,
    load_config,
    render_template,
)
from harness.integration import IntegrationError, IntegrationProcess

SERVER = """
import http.server, os, sys
port = int(os.environ["PORT"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ready" else 404); self.end_headers()
    def log_message(self, *a): pass
print("booting with", os.environ.get("GREETING"), flush=True)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _process(tmp_path: Path, script: str, probe: Probe, env: dict[str, str]) -> IntegrationProcess:
    (tmp_path / "app.py").write_text(script)
    config = IntegrationConfig(command=[sys.executable, "app.py"], ready=probe, stop_timeout_s=2)
    return IntegrationProcess(config, env, tmp_path)


def _greeting_server(tmp_path: Path, greeting: str) -> IntegrationProcess:
    """SERVER, ready when it answers on /ready; it prints its greeting before it listens."""
    port = _port()
    return _process(
        tmp_path,
        SERVER,
        Probe(http=f"http://127.0.0.1:{port}/ready", timeout_s=10),
        {"PORT": str(port), "GREETING": greeting},
    )


def test_starts_waits_for_http_readiness_and_captures_output(tmp_path: Path) -> None:
    proc = _greeting_server(tmp_path, "hello")
    proc.start()
    try:
        assert proc.running
        assert "booting with hello" in proc.output()
    finally:
        assert proc.stop() is not None
    assert not proc.running


def test_kill_minus_nine_then_restart(tmp_path: Path) -> None:
    port = _port()
    proc = _process(tmp_path, SERVER, Probe(log="booting", timeout_s=10), {"PORT": str(port)})
    proc.start()
    assert proc.kill() == -9
    proc.start()
    try:
        assert proc.starts == 2 and proc.output().count("booting with None") == 2
    finally:
        proc.stop()


def test_a_crashing_integration_is_a_clear_error_with_its_output(tmp_path: Path) -> None:
    crash = "print('config missing: STRIPE_API_KEY', flush=True)\nraise SystemExit(3)\n"
    proc = _process(tmp_path, crash, Probe(log="never", timeout_s=10), {})
    started = time.monotonic()
    with pytest.raises(IntegrationError) as failed:
        proc.start()
    assert time.monotonic() - started < 5  # not a hang until the timeout
    assert "exited (code 3)" in str(failed.value)
    assert "config missing: STRIPE_API_KEY" in str(failed.value)


def test_a_missing_command_and_a_silent_one_fail_clearly(tmp_path: Path) -> None:
    config = IntegrationConfig(command=["/nonexistent/integration"], ready=Probe(log="x"))
    with pytest.raises(IntegrationError, match="cannot start"):
        IntegrationProcess(config, {}, tmp_path).start()
    silent = _process(
        tmp_path, "import time\ntime.sleep(30)\n", Probe(log="ready", timeout_s=0.5), {}
    )
    with pytest.raises(IntegrationError, match=r"not ready within 0\.5 s"):
        silent.start()
    silent.kill()


def test_config_errors_name_the_key_and_templates_name_the_unknown(tmp_path: Path) -> None:
    path = tmp_path / "harness.toml"
    path.write_text(
        '[integration]\ncommand = ["x"]\nready = {http = "h", log = "l"}\n'
        '[accounts]\nar = "1100"\nrevenu = "4000"\n'
    )
    with pytest.raises(ConfigError) as failed:
        load_config(path)
    text = str(failed.value)
    assert "integration.ready" in text and "accounts.revenu" in text
    context = {"billing": {"url": "http://127.0.0.1:1", "api_key": "sk_test_x"}}
    assert render_template("{billing.url}/v1", context) == "http://127.0.0.1:1/v1"
    with pytest.raises(ConfigError, match=r"\{billing.secret\}"):
        render_template("{billing.secret}", context)


def test_the_shipped_example_config_is_valid() -> None:
    config = load_config(Path(__file__).resolve().parents[2] / "harness.toml")
    assert config.integration is not None and config.integration.ready.http
    assert set(config.accounts) >= {"ar", "cash", "deferred_revenue", "revenue"}


ANY_BYTES = r"""
import sys, time
out = sys.stdout.buffer
out.write(b"caf\xe9 in latin-1\r\n"); out.flush()
out.write(b"half "); out.flush(); time.sleep(0.1); out.write(b"and half\n"); out.flush()
out.write(b"".join(b"line %d\n" % n for n in range(3000))); out.flush()
out.write(b"ready\n"); out.flush()
time.sleep(0.2)
out.write(b"no newline at the end"); out.flush()
"""


def test_output_is_kept_whatever_its_bytes_and_however_it_is_cut(tmp_path: Path) -> None:
    proc = _process(tmp_path, ANY_BYTES, Probe(log="^ready$", timeout_s=10), {})
    proc.start()  # the probe sees "ready": the reader got past the bytes that are not UTF-8
    deadline = time.monotonic() + 10
    while "no newline at the end" not in proc.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.stop()
    lines = proc.output()
    assert lines[:2] == ["caf\ufffd in latin-1", "half and half"]
    assert lines[2:3002] == [f"line {n}" for n in range(3000)]
    assert lines[3002:] == ["ready", "no newline at the end"]


def test_output_has_what_was_written_before_it_was_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reader thread late (a busy machine: it was not scheduled before the readiness probe
    # passed): output() still has the line the integration wrote before it was ready.
    real_read = os.read

    def late_read(fd: int, size: int) -> bytes:
        time.sleep(0.3)
        return real_read(fd, size)

    monkeypatch.setattr("harness.integration.os.read", late_read)
    proc = _greeting_server(tmp_path, "early")
    proc.start()
    try:
        assert "booting with early" in proc.output()
    finally:
        proc.stop()
