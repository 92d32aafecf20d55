"""pytest-benchmark suite: one group per workload, fastbp beside its numpy reference (and torch/jax).

A step is the full float32 training step (forward, softmax cross-entropy,
backward, Adam) of ``fastbp.bench.WORKLOADS``; inference is W1 at batch 1.
Warm-up is on (the kernels compile before timing).  With the project's default
``--benchmark-disable`` each case runs once, as a smoke test; time them with

    python -m pytest benchmarks/bench_workloads.py --benchmark-enable --benchmark-warmup=on
"""
import importlib.util

import pytest

from fastbp import bench

FRAMEWORKS = ["fastbp", "numpy", "torch", "jax"]


def _skip_missing(framework):
    if importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("workload", list(bench.WORKLOADS))
def test_training_step(benchmark, workload, framework):
    _skip_missing(framework)
    _, widths, batch = bench.WORKLOADS[workload]
    if framework != "fastbp" and workload in ("W2", "W4") and not benchmark.enabled:
        pytest.skip("peer smoke test skipped for the large workloads (run with --benchmark-enable)")
    step = bench.STEP_BUILDERS[framework](widths, batch)
    benchmark.group = f"{workload} train step, batch {batch}"
    benchmark.extra_info["samples_per_step"] = batch
    bench.wait_quiet(bench.other_threads_cpu_seconds)    # the previous case's pool may still spin
    for _ in range(bench.WARMUP_STEPS):
        step()
    benchmark(step)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_inference_w1_batch1(benchmark, framework):
    _skip_missing(framework)
    infer = bench.INFER_BUILDERS[framework](bench.WORKLOADS["W1"][1], 1)
    benchmark.group = "W1 inference, batch 1"
    bench.wait_quiet(bench.other_threads_cpu_seconds)
    for _ in range(bench.WARMUP_STEPS):
        infer()
    benchmark(infer)
