"""Which Ray the batch uses when another cluster runs on the machine, or a dead one left its address behind.

A real `ray start --head` of our own: its ports are free ones, its files (and the address file that `ray.init()`
without an address would read) under a private RAY_TMPDIR, so no other Ray on the machine sees it, nor it them;
it is stopped by its process group. The batch runs as a command, in its own process group, under a time limit:
the old failure was a hang.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pandas as pd
import pytest
from PIL import Image

from conftest import smooth_image
from nstyle import batch, imageio

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAY = os.path.join(os.path.dirname(sys.executable), "ray")
FOREIGN_CPUS = len(os.sched_getaffinity(0)) + 3  # not what an embedded Ray of this machine would have


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def own_processes(marker):
    """Pids whose command line names marker (our cluster's private folder)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                if marker.encode() in file.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def kill_group(process, sig):
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


class ForeignCluster:
    """`ray start --head --block` in its own process group: the group holds every process it starts."""

    def __init__(self, folder):
        self.folder = str(folder)
        self.env = dict(os.environ, RAY_TMPDIR=self.folder,
                        PYTHONPATH=os.pathsep.join(filter(None, [PROJECT, os.environ.get("PYTHONPATH")])))
        self.env.pop("RAY_ADDRESS", None)
        command = ["nice", "-n", "19", RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                   "--num-cpus", str(FOREIGN_CPUS), "--include-dashboard", "false", "--disable-usage-stats",
                   "--temp-dir", os.path.join(self.folder, "ray")]
        for flag in ("--port", "--ray-client-server-port", "--node-manager-port", "--object-manager-port",
                     "--dashboard-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                     "--runtime-env-agent-port", "--metrics-export-port"):
            command += [flag, str(free_port())]
        self.address_file = os.path.join(self.folder, "ray", "ray_current_cluster")
        self.log = open(os.path.join(self.folder, "ray-start.log"), "w")
        self.process = subprocess.Popen(command, env=self.env, start_new_session=True, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not os.path.isfile(self.address_file):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                said = open(os.path.join(self.folder, "ray-start.log")).read()[-2000:]
                shutil.rmtree(self.folder, ignore_errors=True)
                raise RuntimeError("ray start --head did not come up: " + said)
            time.sleep(0.2)
        with open(self.address_file) as file:
            self.address = file.read().strip()

    def kill(self):
        """Dies as a crash does: no clean-up, the address file stays."""
        kill_group(self.process, signal.SIGKILL)
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while own_processes(self.folder) and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop(self):
        kill_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        kill_group(self.process, signal.SIGKILL)
        for pid in own_processes(self.folder):  # anything that left the group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


@pytest.fixture(scope="module")
def foreign():
    # A short folder: Ray's socket paths under it must stay within AF_UNIX's 107 bytes (pytest's are too long).
    folder = tempfile.mkdtemp(prefix="nsr-", dir="/tmp")
    cluster = ForeignCluster(folder)
    yield cluster
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pair")
    paths = []
    for name, seed, size in (("photo.png", 1, (48, 64)), ("painting.png", 2, (64, 48))):
        Image.fromarray(imageio.postprocess(smooth_image(*size, seed=seed))).save(folder / name)
        paths.append(str(folder / name))
    return paths


def ray_logs(env):
    """The tails of the newest Ray session's GCS and raylet logs under env's RAY_TMPDIR: why a start hung."""
    logs = os.path.join(env["RAY_TMPDIR"], "ray", "session_latest", "logs")
    tails = []
    for name in ("gcs_server.out", "gcs_server.err", "raylet.out", "raylet.err"):
        try:
            with open(os.path.join(logs, name), errors="replace") as file:
                tails.append(f"--- {name}\n" + "".join(file.readlines()[-15:]))
        except OSError:
            continue
    return "\n".join(tails)


def run_batch(env, pair, tiny_model_dir, out, *extra, timeout=300):
    """The batch as a command: (exit code, stderr, seconds); a hang past timeout fails the test."""
    command = [sys.executable, "-m", "nstyle.batch", "--content-images", pair[0], "--style-images", pair[1],
               "--out", str(out), "--model-dir", str(tiny_model_dir), "--no-quality", "--quiet",
               "--max-long-edge", "32", "--scale-epochs", "1", *extra]
    started = time.monotonic()
    process = subprocess.Popen(["nice", "-n", "19", *command], cwd=PROJECT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process, signal.SIGKILL)
        _, err = process.communicate()
        pytest.fail(f"the batch still ran after {timeout} s: {err[-2000:]}\n{ray_logs(env)[-6000:]}")
    return process.returncode, err, time.monotonic() - started



@pytest.mark.parametrize("found_by", ["address file", "RAY_ADDRESS"])
def test_without_address_the_batch_starts_its_own_ray_beside_a_running_cluster(tmp_path, foreign, pair,
                                                                                tiny_model_dir, found_by):
    env = dict(foreign.env)  # ray.init() without an address would find the cluster through its address file
    env.pop("RAY_AUTH_MODE", None)  # unset, as in a user's shell: Ray warns (an earlier in-process ray.init sets it)
    if found_by == "RAY_ADDRESS":
        env["RAY_ADDRESS"] = foreign.address
    code, err, _ = run_batch(env, pair, tiny_model_dir, tmp_path / "out")
    assert code == 0, err
    ours = len(os.sched_getaffinity(0))
    assert f"Ray: 1 node(s), {ours} CPUs, 0 GPUs: an embedded Ray started by this command" in err, err
    assert ("RAY_ADDRESS is set but only --address joins" in err) == (found_by == "RAY_ADDRESS")
    assert re.search(r"\(\d+\.\d s to start\)", err), err  # started, not joined
    rows = pd.read_csv(tmp_path / "out" / batch.MANIFEST)
    assert list(rows["status"]) == ["ok"] and list(rows["threads"]) == [ours]  # the foreign one has more CPUs
    assert foreign.process.poll() is None  # and it still runs: the batch stopped only its own Ray
    # Ray's token-authentication warning (RAY_AUTH_MODE unset) is in the log, not on the console.
    assert "Token authentication" not in err
    assert "Token authentication" in (tmp_path / "out" / "logs" / batch.RAY_LOG).read_text()


def test_rays_own_lines_go_to_the_log_and_ours_to_the_console(tmp_path):
    log = tmp_path / "logs" / "ray.log"
    script = f"""
import logging, os, sys
from nstyle import ray_cluster
with ray_cluster.messages_to({str(log)!r}):
    print("ray's print to the driver's stdout")  # how Ray prints a node marked dead for missed heartbeats
    os.write(1, b"C++ core on fd 1\\n")
    os.write(2, b"C++ core on fd 2\\n")
    logging.getLogger("ray").warning("ray's logger")
    logging.getLogger("ray.dashboard").warning("a child of ray's logger")
    print("our line", file=sys.stderr)
print("stdout after", flush=True)
print("stderr after", file=sys.stderr)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "our line\nstderr after\n" and done.stdout == "stdout after\n"
    kept = log.read_text()
    for line in ("ray's print to the driver's stdout", "C++ core on fd 1", "C++ core on fd 2", "ray's logger",
                 "a child of ray's logger"):
        assert line in kept
    assert "our line" not in kept


def test_with_address_the_batch_joins_that_cluster(tmp_path, foreign, pair, tiny_model_dir):
    env = dict(foreign.env, RAY_AUTH_MODE="token")  # README, Scaling out: a cluster's driver sends the token
    code, err, _ = run_batch(env, pair, tiny_model_dir, tmp_path / "out", "--address", foreign.address)
    assert code == 0, err
    assert f"Ray: 1 node(s), {FOREIGN_CPUS} CPUs, 0 GPUs: the Ray cluster at {foreign.address}" in err, err
    assert re.search(r"\(\d+\.\d s to join\)", err), err
    assert foreign.process.poll() is None


def test_a_dead_clusters_address_file_neither_hangs_the_batch_nor_is_joined(tmp_path, foreign, pair,
                                                                            tiny_model_dir):
    foreign.kill()
    assert os.path.isfile(foreign.address_file)  # what a crashed cluster leaves behind
    code, err, _ = run_batch(foreign.env, pair, tiny_model_dir, tmp_path / "embedded")
    assert code == 0 and "an embedded Ray started by this command" in err, err
    # --address auto reads that file: one line at once, not minutes of GCS time-outs.
    code, err, seconds = run_batch(foreign.env, pair, tiny_model_dir, tmp_path / "auto", "--address", "auto",
                                   timeout=60)
    assert code == 2 and err.count("\n") == 1 + 1, err  # the "1 jobs" line, then the error
    assert err.splitlines()[-1].startswith(f"error: --address auto: nothing answers at {foreign.address} ("), err
    assert "ray_current_cluster" in err and "Traceback" not in err
    assert seconds < 30
    assert not (tmp_path / "auto" / batch.MANIFEST).exists()
