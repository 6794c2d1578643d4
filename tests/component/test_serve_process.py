"""``mailsms serve`` as a real process: defaults, signals, start-up failures."""

from __future__ import annotations

import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

from tests.support.proc import free_port, run_cli, serve_process


def lhlo(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        greeting = sock.recv(1024)
        sock.sendall(b"LHLO test\r\nQUIT\r\n")
        data = b""
        while b"221" not in data:
            chunk = sock.recv(1024)
            if not chunk:
                break
            data += chunk
    return greeting + data


def test_serve_with_no_configuration_uses_embedded_defaults(tmp_path: Path) -> None:
    """LMTP on 127.0.0.1:2424, HTTP on 127.0.0.1:8025, state in ./var."""
    with serve_process([], cwd=tmp_path, wait_ports=[2424, 8025]) as proc:
        assert b"250 " in lhlo(2424)
        with urllib.request.urlopen("http://127.0.0.1:8025/healthz", timeout=5) as resp:
            assert resp.status == 200
        assert (tmp_path / "var").is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def store_file(tmp_path: Path, store_url: str) -> list[str]:
    """``--config`` with a file naming the store of ``store_url`` (and nothing else)."""
    (tmp_path / "store.toml").write_text(f'[store]\nurl = "{store_url}"\n')
    return ["--config", "store.toml"]


def test_sigint_also_stops_cleanly(tmp_path: Path, store_url: str) -> None:
    lmtp, http = free_port(), free_port()
    args = ["--lmtp-listen", f"127.0.0.1:{lmtp}", "--http-listen", f"127.0.0.1:{http}", "--state-dir", "s"]
    args += store_file(tmp_path, store_url)
    with serve_process(args, cwd=tmp_path, wait_ports=[lmtp, http]) as proc:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        _, err = proc.communicate()
    assert "daemon started" in err and "daemon stopped" in err
    assert (tmp_path / "s").is_dir()


def test_port_in_use_exits_at_once_naming_the_address(tmp_path: Path, store_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["serve", "--lmtp-listen", f"127.0.0.1:{port}", "--http-listen", "", *store_file(tmp_path, store_url)]
        result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 69
    assert f"cannot listen on 127.0.0.1:{port} (server.lmtp_listen)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var").exists()


def test_bad_configuration_stops_serve_with_78(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text("[server]\nlmtp_listen = 25\n")
    result = run_cli(["serve", "--config", "m.toml"], cwd=tmp_path)
    assert result.returncode == 78
    assert 'm.toml:2: server.lmtp_listen: expected a "host:port" string' in result.stderr


def test_unwritable_state_dir_exits_73(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("")
    result = run_cli(
        ["serve", "--lmtp-listen", f"127.0.0.1:{free_port()}", "--http-listen", "", "--state-dir", "blocker/var"],
        cwd=tmp_path,
    )
    assert result.returncode == 73
    assert "blocker/var (state.dir)" in result.stderr


def test_check_exit_codes_from_a_real_process(tmp_path: Path) -> None:
    good = run_cli(["check"], cwd=tmp_path, env={"MAILSMS_CONFIG": ""})
    assert good.returncode == 0
    (tmp_path / "bad.toml").write_text("[server\n")
    bad = run_cli(["check", "--config", "bad.toml"], cwd=tmp_path)
    assert bad.returncode == 78
    assert "bad.toml: (syntax): bad TOML" in bad.stderr


def test_unknown_subcommand_exits_64(tmp_path: Path) -> None:
    assert run_cli(["nosuch"], cwd=tmp_path).returncode == 64


def test_serve_stdout_is_empty_and_logs_go_to_stderr(tmp_path: Path, store_url: str) -> None:
    lmtp = free_port()
    args = ["--lmtp-listen", f"127.0.0.1:{lmtp}", "--http-listen", "", *store_file(tmp_path, store_url)]
    with serve_process(args, cwd=tmp_path, wait_ports=[lmtp]) as proc:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert out == ""
    assert "mailsms/master[" in err
    assert isinstance(proc, subprocess.Popen)
