"""Ray for the batch and the bench: an embedded local Ray that the command starts itself, or a cluster's address.

Ray does the scheduling (resources, placement, retries of tasks whose node was lost); this module only connects
and says where a task ran.
"""
import contextlib
import logging
import os
import socket
import sys

from nstyle.errors import UsageError
from nstyle.files import PROJECT_DIR

ADDRESS_HELP = ("a running Ray cluster: auto (the one `ray start` runs on this machine) or ray://HOST:10001 (Ray "
                "Client; README: Scaling out); default: an embedded Ray of its own on this machine, started and "
                "stopped by this command (never a running cluster, nor RAY_ADDRESS's)")


ADDRESS_PROBE_S = 5  # a live GCS accepts at once; a dead machine's address times out here instead of in Ray


def address_origin(address):
    """(host:port, where it came from) for --address; (None, None) where only Ray can tell ("auto" with no
    address file: Ray then looks for a running GCS process)."""
    if address == "auto":
        if os.environ.get("RAY_ADDRESS"):
            address = os.environ["RAY_ADDRESS"]
            origin = "--address auto: the RAY_ADDRESS variable"
        else:
            from ray._common.utils import get_ray_address_file
            path = get_ray_address_file(None)
            if not os.path.isfile(path):
                return None, None
            with open(path) as file:
                address = file.read().strip()
            origin = f"--address auto: the address the last `ray start` on this machine left in {path}"
    else:
        origin = "--address"
    return address.split("://", 1)[-1], origin


def check_reachable(address):
    """UsageError unless something answers at the cluster's address. Ray itself waits minutes on a dead one,
    printing GCS time-outs (a cluster that was killed or crashed leaves its address file behind)."""
    host_port, origin = address_origin(address)
    if host_port is None:
        return
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=ADDRESS_PROBE_S).close()
    except ValueError:
        raise UsageError(f"--address {address}: {host_port} is not HOST:PORT ({origin})") from None
    except OSError as error:
        raise UsageError(f"--address {address}: nothing answers at {host_port} ({origin}; "
                         f"{error.strerror or type(error).__name__}): that cluster has stopped; start it with "
                         "`ray start --head` (README: Scaling out), or leave out --address for an embedded Ray"
                         ) from None


def description(address):
    """Which Ray the command uses, for its first line about Ray."""
    if address:
        return f"the Ray cluster at {address}"
    ignored = "; RAY_ADDRESS is set but only --address joins a cluster" if os.environ.get("RAY_ADDRESS") else ""
    return f"an embedded Ray started by this command, stopped at its end{ignored}"


@contextlib.contextmanager
def connected(address=None, num_cpus=None):
    """Ray, connected for the duration: to the cluster at address, or to a new local one with num_cpus CPUs
    (None: all) and the GPUs Ray finds. Ray binds a local one to this machine's address, not to 127.0.0.1
    (ray.init turns a loopback address into that), behind Ray's token authentication."""
    import ray
    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        if address:
            check_reachable(address)
            ray.init(address=address, **options)
        else:
            # "local": a new instance of our own. ray.init() without an address would join RAY_ADDRESS's or the
            # latest `ray start`'s cluster on this machine, and hang on a dead one's address file.
            # The workers import nstyle from this checkout, whatever the current folder.
            ray.init(address="local", num_cpus=num_cpus, runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                         filter(None, [PROJECT_DIR, os.environ.get("PYTHONPATH")]))}}, **options)
    except (ConnectionError, ValueError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if address:
            raise UsageError(f"cannot connect to the Ray cluster at {address} ({first_line}); a cluster with "
                             "token authentication needs RAY_AUTH_MODE=token and its token here (README: Scaling "
                             "out), or leave out --address for an embedded Ray") from None
        raise UsageError(f"cannot start an embedded Ray on this machine ({first_line})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def writes_to_fd(stream, fd):
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):  # a capture (pytest), a closed stream
        return False


@contextlib.contextmanager
def messages_to(log_path):
    """Ray's own lines go to log_path while the block runs, not to the console: its Python logger (the
    token-authentication warning), what it prints to the driver's stdout (nodes marked dead for missed heartbeats)
    and what its C++ core writes to file descriptors 1 and 2 (GCS time-outs). The command's own lines, written to
    sys.stderr, stay on the console: sys.stderr moves to a copy of the console's descriptor."""
    import ray  # noqa: F401 -- its logger's handler is made at import: replace it after
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    log = open(log_path, "a", buffering=1)
    ray_logger = logging.getLogger("ray")
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    saved_handlers, saved_stdout, saved_stderr = ray_logger.handlers[:], sys.stdout, sys.stderr
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    console_fds = {fd: os.dup(fd) for fd in (1, 2)}
    console = None
    if writes_to_fd(sys.stderr, 2):
        console = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
        sys.stderr = console
    ray_logger.handlers = [handler]
    sys.stdout = log
    for fd in (1, 2):
        os.dup2(log.fileno(), fd)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
        for fd, saved in console_fds.items():
            os.dup2(saved, fd)
            os.close(saved)
        ray_logger.handlers, sys.stdout, sys.stderr = saved_handlers, saved_stdout, saved_stderr
        if console is not None:
            console.close()
        log.close()
        if os.path.getsize(log_path) == 0:  # Ray never started, or said nothing
            os.remove(log_path)


def alive_nodes(ray):
    """The cluster's live nodes, as ray.nodes() describes them (NodeID, NodeManagerAddress, Resources, ...)."""
    return [node for node in ray.nodes() if node["Alive"]]


def this_node():
    """Where the calling task runs: Ray's node id, the node's IP address and host name."""
    import ray
    node_id = ray.get_runtime_context().get_node_id()
    address = next((node["NodeManagerAddress"] for node in ray.nodes() if node["NodeID"] == node_id), None)
    return {"node": node_id, "node_ip": address, "hostname": socket.gethostname()}


def assigned_threads():
    """The CPUs Ray gave the calling task (at least 1): the threads its framework may use."""
    import ray
    return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
