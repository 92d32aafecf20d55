"""benchmarks/table.py's wait between frameworks: no timing starts while another worker burns CPU."""
import importlib.util
import pathlib
import time

_spec = importlib.util.spec_from_file_location(
    "bench_table", pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "table.py")
table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(table)


class FakeWorker:
    """CPU time that grows (a spinning thread pool) until ``busy_until``, then stays put."""

    def __init__(self, busy_for):
        self.busy_until = time.perf_counter() + busy_for

    def cpu_seconds(self):
        return min(time.perf_counter(), self.busy_until)


def test_wait_quiet_waits_out_a_spinning_worker():
    workers = {"idle": FakeWorker(0.0), "spinning": FakeWorker(0.25)}
    table.wait_quiet(workers, poll=0.01)
    assert time.perf_counter() >= workers["spinning"].busy_until


def test_wait_quiet_returns_after_one_poll_when_all_idle():
    t0 = time.perf_counter()
    table.wait_quiet({"a": FakeWorker(0.0), "b": FakeWorker(0.0)}, poll=0.01, limit=5.0)
    assert time.perf_counter() - t0 < 1.0


def test_wait_quiet_gives_up_after_its_limit():
    t0 = time.perf_counter()
    table.wait_quiet({"busy": FakeWorker(60.0)}, poll=0.01, limit=0.2)
    assert 0.2 <= time.perf_counter() - t0 < 5.0


def test_step_flops_leave_out_the_first_layers_input_gradient():
    # 3-4-2 at batch 5: forward 3*4 + 4*2, weight gradients the same, input gradient of layer 2 only
    assert table.step_flops([3, 4, 2], 5) == 2 * 5 * (12 + 8 + 12 + 8 + 8)
