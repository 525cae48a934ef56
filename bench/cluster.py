"""The bench on Ray: python -m bench ... --address auto|ray://HOST:10001 [--nodes all]

Each configuration is a Ray task that asks for what its device needs (cpu: --threads CPUs; gpuN: one GPU, the
one Ray assigns) and runs on a node that has it, in its own worker process there exactly as the local path runs
it (bench.local.run_worker), one configuration at a time so that timings do not share a machine. With --nodes all
the list runs on every node, node after node. Every row carries its node's machine.json (column machine_json)
and its machine label, so one report compares the machines. Each node needs the project at the same path as here
(the images and the model folder are read there).
"""
import json
import os
import tempfile

from bench import machine
from nstyle import ray_cluster


def task_resources(device, threads):
    return {"num_gpus": 1, "num_cpus": 1} if device.startswith("gpu") else {"num_cpus": threads}


def lacking(node, device, threads):
    """Why the node cannot run a configuration on device with threads; "" when it can."""
    resources = node["Resources"]
    if device.startswith("gpu"):
        return "" if resources.get("GPU", 0) >= 1 else "no GPU"
    cpus = resources.get("CPU", 0)
    return "" if cpus >= threads else f"{cpus:g} CPUs, the configuration asks for --threads {threads}"


def run_here(args, backend, device, size):
    """The Ray task: one configuration in a worker process on this node; (its row, the worker's log)."""
    import ray

    from bench.local import run_worker
    gpu_ids = ray.get_gpu_ids()
    local_device = "gpu0" if device.startswith("gpu") else device  # Ray's CUDA_VISIBLE_DEVICES holds its GPU
    info = machine.machine_info(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        log_path = os.path.join(folder, "worker.log")
        row = run_worker(args, backend, local_device, size, log_path)
        with open(log_path) as log:
            log_text = log.read()
    row.update(ray_cluster.this_node(), device=device, machine=info["label"], machine_json=json.dumps(info),
               ray_gpu=",".join(map(str, gpu_ids)))
    return row, log_text


class RayRunner:
    """Runs configurations through Ray on a connected cluster: on one given node, or on any that fits."""

    def __init__(self, ray, args):
        self.ray, self.args = ray, args
        self.remote = ray.remote(run_here)

    def nodes(self):
        """Node ids for --nodes all, else [None] (any node with the device)."""
        if self.args.nodes == "all":
            return [node["NodeID"] for node in ray_cluster.alive_nodes(self.ray)]
        return [None]

    def __call__(self, node_id, backend, device, size, log_path):
        nodes = [node for node in ray_cluster.alive_nodes(self.ray) if node_id in (None, node["NodeID"])]
        reasons = [lacking(node, device, self.args.threads) for node in nodes]
        row = {"backend": backend, "device": device, "long_edge": size, "model": self.args.model,
               "threads": self.args.threads}
        if all(reasons):  # Ray would wait for such a node for ever: say so instead
            where = f"node {node_id}" if node_id else "no node of the Ray cluster"
            return dict(row, status="no-device", node=node_id,
                        note=f"{where}: {'; '.join(sorted(set(reasons))) or 'gone'}")
        options = dict(task_resources(device, self.args.threads), max_retries=0)  # a timing is not retried
        if node_id:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=False)
        try:
            row, log_text = self.ray.get(self.remote.options(**options).remote(self.args, backend, device, size))
        except self.ray.exceptions.RayError as error:  # the node or its worker died
            return dict(row, status="error", node=node_id, note=f"Ray: {str(error).strip().splitlines()[0][:250]}")
        with open(log_path, "w") as log:
            log.write(log_text)
        return row
