"""Benchmark harness: MXNet against PyTorch on the neural-style workload (`python -m bench --help`).

Each (backend, device, size) runs in its own `python -m bench.worker` process so that peak memory is that
run's alone; `bench.report` turns results.csv into report.md and plots. This package imports no framework
itself: only the worker does, after it has set the thread variables.
"""
