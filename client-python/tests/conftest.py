"""Fixtures that run the real ``mmapd`` binary.

The binary is ``$MMAPD_BIN``, else ``target/release/mmapd``, else
``target/debug/mmapd`` of the repository this package lives in.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from typing import Iterator, List, Optional

import pytest

import mmapd

REPO = pathlib.Path(__file__).resolve().parents[2]


def binary() -> str:
    env = os.environ.get("MMAPD_BIN")
    if env:
        return env
    for profile in ("release", "debug"):
        path = REPO / "target" / profile / "mmapd"
        if path.exists():
            return str(path)
    pytest.skip("no mmapd binary: set MMAPD_BIN or build target/release/mmapd")
    raise AssertionError  # unreachable


class Server:
    """One ``mmapd`` process serving ``root``; restartable on the same address."""

    def __init__(self, root: pathlib.Path, args: Optional[List[str]] = None) -> None:
        self.root = root
        self.args = list(args or [])
        self.proc: Optional[subprocess.Popen] = None
        self.addr = "127.0.0.1:0"
        self.start()

    def start(self) -> None:
        cmd = [binary(), "--root", str(self.root), "--listen", self.addr, "--log-format", "json", *self.args]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        event = json.loads(line)
        assert event["fields"]["message"] == "serving", line
        self.addr = event["fields"]["addr"]
        # Keep draining stderr so a chatty server never blocks on a full pipe.
        import threading

        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def connect(self, **kw: object) -> mmapd.Client:
        kw.setdefault("local_root", str(self.root))
        return mmapd.connect(self.addr, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("root")
    srv = Server(root)
    yield srv
    srv.stop()


@pytest.fixture()
def client(server: Server) -> Iterator[mmapd.Client]:
    with server.connect() as c:
        yield c


@pytest.fixture()
def default_env(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The drop-in setup: MMAPD_ENDPOINT and MMAPD_LOCAL_ROOT point at ``server``."""
    monkeypatch.setenv("MMAPD_ENDPOINT", server.addr)
    monkeypatch.setenv("MMAPD_LOCAL_ROOT", str(server.root))
    yield
    import mmapd._client as c

    if c._default is not None:
        c._default.close()
        c._default = None
