"""Ray for the batch and the bench: an embedded local Ray that the command starts itself, or a cluster's address.

Ray does the scheduling (resources, placement, retries of tasks whose node was lost); this module only connects
and says where a task ran.
"""
import contextlib
import logging
import os
import socket

from nstyle.errors import UsageError
from nstyle.files import PROJECT_DIR

ADDRESS_HELP = ("a running Ray cluster: auto (the one `ray start` runs on this machine) or ray://HOST:10001 (Ray "
                "Client; README: Scaling out); default: an embedded Ray on this machine alone, started and stopped "
                "by this command")


@contextlib.contextmanager
def connected(address=None, num_cpus=None):
    """Ray, connected for the duration: to the cluster at address, or to a local one with num_cpus CPUs (None:
    all) and the GPUs Ray finds. Ray binds a local one to this machine's address, not to 127.0.0.1 (ray.init turns
    a loopback address into that), behind Ray's token authentication."""
    import ray
    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        if address:
            ray.init(address=address, **options)
        else:
            # The workers import nstyle from this checkout, whatever the current folder.
            ray.init(num_cpus=num_cpus, runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                         filter(None, [PROJECT_DIR, os.environ.get("PYTHONPATH")]))}}, **options)
    except (ConnectionError, ValueError, RuntimeError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"cannot connect to {where} ({first_line}); start one with `ray start --head` "
                         "(README: Scaling out), or leave out --address for an embedded one") from None
    try:
        yield ray
    finally:
        ray.shutdown()


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
