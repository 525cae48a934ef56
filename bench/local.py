"""One bench configuration in its own worker process on this machine (bench/worker.py): its row, whatever
happens to the worker. The suite runs it here; on Ray each node runs it there (bench/cluster.py)."""
import json
import os
import signal
import subprocess
import sys
import time

from bench import worker
from nstyle.backends import cpu_thread_environment
from nstyle.files import PROJECT_DIR


def worker_command(args, backend, device, size):
    command = [sys.executable, "-m", "bench.worker", "--backend", backend, "--device", device, "--size", str(size),
               "--epochs", str(args.epochs), "--warmup", str(args.warmup), "--model", args.model,
               "--precision", args.precision, "--model-dir", args.model_dir, "--content", args.content,
               "--style", args.style, "--threads", str(args.threads)]
    if args.stop_eps is not None:
        command += ["--stop-eps", str(args.stop_eps), "--max-epochs", str(args.max_epochs)]
    if args.random_weights:
        command.append("--random-weights")
    if args.inject_failure:
        failing_size, _, kind = args.inject_failure.partition(":")
        if int(failing_size) == size:
            command += ["--inject-failure", kind or "error"]
    return command


def last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def run_worker(args, backend, device, size, log_path):
    """Run one configuration; its row, whatever happens to the worker."""
    row = {"backend": backend, "device": device, "long_edge": size, "model": args.model, "precision": args.precision,
           "threads": args.threads}
    env = dict(os.environ, **cpu_thread_environment(args.threads))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROJECT_DIR, env.get("PYTHONPATH")]))
    started = time.perf_counter()
    with open(log_path, "w") as log:
        # Own session: on a timeout the whole group (the worker and anything it started) is stopped.
        process = subprocess.Popen(worker_command(args, backend, device, size), stdout=subprocess.PIPE,
                                   stderr=log, text=True, env=env, cwd=PROJECT_DIR, start_new_session=True)
        try:
            stdout, _ = process.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return dict(row, status="timeout", note=f"stopped after {args.timeout:g} s (--timeout)",
                        wall_s=time.perf_counter() - started)
        except BaseException:  # Ctrl-C: the worker, in a session of its own, would otherwise run on
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    wall = time.perf_counter() - started
    for line in stdout.splitlines():
        if line.startswith(worker.RESULT_PREFIX):
            return dict(json.loads(line[len(worker.RESULT_PREFIX):]), wall_s=wall)
    with open(log_path) as log:
        stderr_tail = last_line(log.read())
    if process.returncode == -signal.SIGKILL:
        return dict(row, status="oom", wall_s=wall,
                    note=f"worker killed by SIGKILL, most likely the kernel's OOM killer; last output: {stderr_tail}")
    why = (f"signal {signal.Signals(-process.returncode).name}" if process.returncode < 0
           else f"exit code {process.returncode}")
    return dict(row, status="error", note=f"worker died ({why}) without a result; last output: {stderr_tail}",
                wall_s=wall)


