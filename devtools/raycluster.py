"""A Ray cluster of two nodes on this machine, for the tests and the benchmark: a head and one worker, each a
``ray start`` of its own, loopback only, small CPU counts. ``with LocalCluster() as cluster: ... cluster.address``.
Needs the ray extra."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalCluster:
    """Started on creation; ``stop`` (or leaving the ``with``) stops every Ray process on this machine."""

    def __init__(self, head_cpus: int = 1, worker_cpus: int = 2) -> None:
        # Ray's socket paths must stay short: a folder of its own under /tmp, not pytest's deep tmp_path
        self.temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        self.address = f"127.0.0.1:{_free_port()}"
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        self.env.pop("OPENAI_API_KEY", None)
        common = ["--node-ip-address=127.0.0.1", "--object-store-memory=100000000", "--disable-usage-stats"]
        subprocess.run([RAY, "start", "--head", f"--port={self.address.split(':')[1]}", f"--num-cpus={head_cpus}",
                        "--include-dashboard=false", f"--temp-dir={self.temp}", *common],
                       env=self.env, check=True, capture_output=True, timeout=120)  # fmt: skip
        worker = [RAY, "start", f"--address={self.address}", f"--num-cpus={worker_cpus}", "--block", *common]
        self.worker = subprocess.Popen(
            worker, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )  # a process group of its own: killed as one node
        self._wait_for_nodes(2)

    def _wait_for_nodes(self, count: int) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = subprocess.run([RAY, "status", f"--address={self.address}"], env=self.env,
                                    capture_output=True, text=True)  # fmt: skip
            active = status.stdout.split("Active:")[-1].split("Pending:")[0]
            if active.count("node_") >= count:
                return
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster did not reach {count} nodes:\n{status.stdout}{status.stderr}")

    def kill_worker(self) -> None:
        """The worker node dies at once, with everything it runs: its raylet, its workers, their ffmpegs."""
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()
        subprocess.run(["pkill", "-9", "-f", "--", f"--address={self.address}"], check=False, capture_output=True)

    def stop(self) -> None:
        if self.worker.poll() is None:
            self.kill_worker()
        subprocess.run([RAY, "stop", "--force"], env=self.env, capture_output=True, timeout=120)
        shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
