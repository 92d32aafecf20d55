"""The benchmark tables' wait between frameworks (no timing starts while another thread pool
burns CPU), benchmarks/table.py's FLOP count and its ``--bounds`` pieces."""
import importlib.util
import os
import pathlib
import threading
import time

import numpy as np
import pytest

from fastbp import arena, bench
from fastbp.kernels import gemm

_spec = importlib.util.spec_from_file_location(
    "bench_table", pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "table.py")
table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(table)


def spinning_for(seconds):
    """A CPU-time reading that grows (a spinning thread pool) for ``seconds``, then stays put."""
    busy_until = time.perf_counter() + seconds
    return lambda: min(time.perf_counter(), busy_until), busy_until


def test_wait_quiet_waits_out_a_spinning_pool():
    cpu_seconds, busy_until = spinning_for(0.25)
    bench.wait_quiet(cpu_seconds, poll=0.01)
    assert time.perf_counter() >= busy_until


def test_wait_quiet_returns_after_one_poll_when_idle():
    t0 = time.perf_counter()
    bench.wait_quiet(lambda: 1.5, poll=0.01, limit=5.0)
    assert time.perf_counter() - t0 < 1.0


def test_wait_quiet_gives_up_after_its_limit():
    t0 = time.perf_counter()
    bench.wait_quiet(spinning_for(60.0)[0], poll=0.01, limit=0.2)
    assert 0.2 <= time.perf_counter() - t0 < 5.0


def test_other_threads_cpu_seconds_sees_a_busy_thread_and_not_the_caller():
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            sum(range(1000))
    thread = threading.Thread(target=spin)
    before = bench.other_threads_cpu_seconds()
    thread.start()
    time.sleep(0.3)
    during = bench.other_threads_cpu_seconds()
    stop.set()
    thread.join()
    assert during - before >= 0.05          # ~0.15 s of CPU with the GIL shared; ticks are 10 ms
    t0 = time.perf_counter()
    bench.wait_quiet(bench.other_threads_cpu_seconds, poll=0.05, limit=5.0)
    assert time.perf_counter() - t0 < 2.0   # quiet again once the busy thread has stopped


def test_step_flops_leave_out_the_first_layers_input_gradient():
    # 3-4-2 at batch 5: forward 3*4 + 4*2, weight gradients the same, input gradient of layer 2 only
    assert table.step_flops([3, 4, 2], 5) == 2 * 5 * (12 + 8 + 12 + 8 + 8)


def test_the_tile_timing_loop_runs_the_register_tile_on_each_threads_own_panels():
    threads = 2
    work = arena.aligned_zeros(threads * bench._TILE_STRIDE, np.float32)
    work[:] = np.random.default_rng(0).standard_normal(work.size).astype(np.float32)
    bench._tile_calls(work, 3)
    mr, nr, kc = gemm.MR, gemm.NR, bench._TILE_KC
    for t in range(threads):
        a = t * bench._TILE_STRIDE
        b = a + mr * kc
        A = work[a:b].reshape(kc, mr).astype(np.float64)               # A (i, p) at a + p*MR + i
        B = work[b:b + nr * kc].reshape(kc, nr).astype(np.float64)     # B (p, j) at b + p*NR + j
        T = work[b + nr * kc:b + nr * kc + mr * nr].reshape(mr, nr)
        np.testing.assert_allclose(T, A.T @ B, rtol=1e-4, atol=1e-3)


def test_samples_bound_is_the_batch_over_the_steps_flops_at_that_rate():
    # 3-4-2 at batch 5 does 480 FLOPs a step: at 4.8e-7 GFLOP/s, one step a second
    assert table.samples_bound(4.8e-7, [3, 4, 2], 5) == pytest.approx(5.0, rel=1e-12)


def test_workers_are_pinned_to_the_first_n_cpus_and_the_header_names_them():
    cpus = sorted(os.sched_getaffinity(0))
    assert table.pinned_cpus(1) == cpus[:1]
    assert table.pinned_cpus(len(cpus)) == cpus
    assert table.pinned_cpus(len(cpus) + 5) == cpus
    assert table.cpu_list([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert table.cpu_list([3]) == "3"


def test_jax_is_put_on_the_cpu_unless_the_environment_says_otherwise(monkeypatch):
    pytest.importorskip("jax")
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    bench._import_jax_on_cpu()
    assert os.environ["JAX_PLATFORMS"] == "cpu"
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    bench._import_jax_on_cpu()
    assert os.environ["JAX_PLATFORMS"] == "cuda"


def test_the_placement_probes_are_a_ratio_and_a_time_and_nan_on_one_thread():
    import fastbp as fb
    old = fb.get_num_threads()
    try:
        fb.set_num_threads(1)
        assert np.isnan(bench.core_sharing(calls=5, tries=1)) and np.isnan(bench.region_us(10, 1))
        if old >= 2:
            fb.set_num_threads(2)
            ratio, region = bench.core_sharing(calls=50, tries=2), bench.region_us(100, 2)
            assert np.isfinite(ratio) and ratio > 0
            assert 0 < region < 1e4
    finally:
        fb.set_num_threads(old)


class FakeWorker:
    """Replies from a script: ``sharing`` and ``region`` requests pop the next (sharing, region µs)
    reading in turn, other requests count up."""

    def __init__(self, probes=()):
        self.probes = [x for pair in probes for x in pair]
        self.asked = []

    def cpu_seconds(self):
        return 0.0

    def ask(self, kind, *rest):
        self.asked.append(kind)
        return self.probes.pop(0) if kind in ("sharing", "region") else float(len(self.asked))


SPLIT, SHARED, FAR = (1.0, 1.1), (1.9, 1.1), (1.0, 2.3)


def test_a_block_with_a_slow_probe_before_or_after_it_counts_as_slow():
    fast = FakeWorker([SPLIT, SHARED, FAR, SPLIT, SPLIT, SPLIT])
    placement = table.Placement({"fastbp": fast})
    for _ in range(3):
        placement.timed("fastbp", "step", "W1", 0.1)
    assert placement.take() == "2/3"        # (split, shared) and (far, split) slow, (split, split) not
    assert placement.take() == "0/0"
    assert "1.10 µs fastest" in placement.summary() and "2.30 slowest" in placement.summary()


def test_a_slow_block_is_timed_again_up_to_the_retries_and_counted_once():
    fast, peer = FakeWorker([SPLIT, SHARED, FAR, SPLIT, SPLIT, SPLIT]), FakeWorker()
    placement = table.Placement({"fastbp": fast, "numpy": peer}, retries=5)
    assert placement.timed("numpy", "step", "W1", 0.1) == 3.0     # the third timing is kept
    assert peer.asked == ["step"] * 3 and placement.take() == "0/1"
    stuck = table.Placement({"fastbp": FakeWorker([SPLIT] + [SHARED] * 5), "numpy": FakeWorker()}, retries=2)
    stuck.timed("numpy", "step", "W1", 0.1)
    assert stuck.take() == "1/1"


def test_badly_placed_readings_and_the_benchs_note_name_the_workloads_around_them():
    assert not bench.badly_placed((1.0, 1.1), 1.0)
    assert bench.badly_placed((1.9, 1.1), 1.0)                   # sharing one core
    assert bench.badly_placed((1.0, 2.3), 1.1)                   # far apart
    assert bench.placement_notes({"W1": ((1.0, 1.1), (1.0, 1.2))}) == []
    notes = bench.placement_notes({"W1": ((1.0, 1.1), (1.0, 1.2)), "W4": ((1.0, 1.1), (1.0, 2.4)),
                                   "W3": ((1.9, 1.1), (1.0, 1.1))})
    assert len(notes) == 1 and "around W4, W3 " in notes[0] and "W1" not in notes[0]


@pytest.mark.parametrize("probe, kwargs, error, words", [
    (bench.core_sharing, {"calls": 0}, ValueError, "calls must be >= 1"),
    (bench.core_sharing, {"tries": 1.5}, TypeError, "tries must be an int"),
    (bench.region_us, {"regions": -3}, ValueError, "regions must be >= 1"),
    (bench.region_us, {"tries": "3"}, TypeError, "tries must be an int"),
])
def test_the_placement_probes_reject_counts_that_are_not_positive_ints(probe, kwargs, error, words):
    with pytest.raises(error, match=words):
        probe(**kwargs)
