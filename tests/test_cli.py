"""The ``fastbp`` command line, driven through ``fastbp.cli.main(argv)`` (plus one subprocess smoke test)."""
import csv
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fastbp as fb
from fastbp.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Small, easily learnt tables: string-labelled classes and a linear regression target."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    n = 150
    X = rng.standard_normal((n, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, 1000.0]   # scales standardization fixes
    klass = (X[:, 0] > 0.4).astype(int) + (X[:, 0] > -0.4)
    species = np.array(["cat", "dog", "owl"])[klass]
    price = 3.0 * X[:, 0] - 0.2 * X[:, 1] + 0.01 * X[:, 2] + 0.05 * rng.standard_normal(n)
    rows = X.tolist()
    with open(d / "species.csv", "w") as f:
        f.write("a,b,c,species\n")
        f.writelines(f"{a!r},{b!r},{c!r},{s}\n" for (a, b, c), s in zip(rows, species))
    with open(d / "price.csv", "w") as f:
        f.write("price,a,b,c\n")
        f.writelines(f"{p!r},{a!r},{b!r},{c!r}\n" for p, (a, b, c) in zip(price.tolist(), rows))
    np.save(d / "X.npy", X)
    np.save(d / "y357.npy", np.array([3, 5, 7])[klass])
    (d / "bad_quote.csv").write_text('a,b,y\n1,2,0\n3,"4,1\n')
    (d / "ragged.csv").write_text("a,b,y\n1,2\n3,4,1\n")
    (d / "text_feature.csv").write_text("a,b,y\n1,red,0\n3,4,1\n")
    (d / "no_header.csv").write_text("1,2,0\n3,4,1\n")
    (d / "not_a_model.npz").write_bytes(b"this is not a zip file")
    np.savez(d / "plain.npz", X=np.ones((2, 2)), y=np.zeros(2))
    return d


# ------------------------------------------------------------------------ train
def test_default_train_on_digits_reaches_95_percent(capsys):
    code, out, err = run(capsys)                     # no arguments = fastbp train
    assert code == 0, err
    assert "digits: " in out and "epoch 30/30" in out
    acc = float(re.search(r"test accuracy (\d\.\d+)", out).group(1))
    assert acc >= 0.95
    assert re.search(r"training speed [\d,]+ samples/s over epochs 2-30 \(epoch 1 is excluded", out)


def test_train_quiet_prints_only_results(capsys):
    code, out, err = run(capsys, "train", "--epochs", "2", "--quiet", "--layers", "32")
    assert code == 0, err
    assert "epoch" not in out.split("\n")[0]
    assert out.startswith("test accuracy")
    assert err == ""


def test_train_options(capsys):
    code, out, err = run(capsys, "train", "--epochs", "2", "--layers", "16,16", "--activation", "tanh",
                         "--optimizer", "sgd", "--lr", "0.05", "--batch-size", "64",
                         "--threads", "1", "--val-split", "0", "--seed", "3")
    assert code == 0, err
    assert "model 64-16-16-10 (tanh)" in out and "sgd" in out
    assert "train accuracy" in out and "--val-split 0" in out


def test_train_csv_string_labels_save_and_predict(capsys, data, tmp_path):
    model = str(tmp_path / "species")                # .npz is appended
    code, out, err = run(capsys, "train", "--data", str(data / "species.csv"), "--epochs", "25",
                         "--batch-size", "16", "--save", model)
    assert code == 0, err
    assert "3 classes" in out
    assert float(re.search(r"test accuracy (\d\.\d+)", out).group(1)) >= 0.8
    assert os.path.exists(model + ".npz") and os.path.exists(model + ".npz.preprocess.json")

    code, out, err = run(capsys, "predict", model + ".npz", str(data / "species.csv"))   # CSV to stdout
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["label", "prob_cat", "prob_dog", "prob_owl"]
    assert len(rows) == 151
    probs = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    labels = [row[0] for row in rows[1:]]
    assert set(labels) <= {"cat", "dog", "owl"}
    truth = [row[3] for row in read_csv(data / "species.csv")[1:]]
    assert np.mean(np.array(labels) == np.array(truth)) >= 0.8

    out_csv, out_npy = str(tmp_path / "p.csv"), str(tmp_path / "p.npy")
    assert run(capsys, "predict", model + ".npz", str(data / "species.csv"), "--out", out_csv)[0] == 0
    with open(out_csv) as f:
        assert f.read() == out
    assert run(capsys, "predict", model, str(data / "species.csv"), "--out", out_npy)[0] == 0
    np.testing.assert_array_equal(np.load(out_npy, allow_pickle=False), labels)


def test_integer_labels_357_are_mapped_and_restored(capsys, data, tmp_path):
    model = str(tmp_path / "m.npz")
    code, _out, err = run(capsys, "train", "--data", str(data / "X.npy"), "--targets", str(data / "y357.npy"),
                         "--epochs", "20", "--batch-size", "16", "--quiet", "--save", model)
    assert code == 0, err
    out_npz = str(tmp_path / "p.npz")
    assert run(capsys, "predict", model, str(data / "X.npy"), "--out", out_npz)[0] == 0
    with np.load(out_npz) as f:
        assert list(f["classes"]) == [3, 5, 7]
        assert set(f["label"].tolist()) <= {3, 5, 7}
        assert f["proba"].shape == (150, 3)
        assert np.mean(f["label"] == np.load(data / "y357.npy")) >= 0.8


def test_model_trained_on_arrays_predicts_from_a_csv_by_column_order(capsys, data, tmp_path):
    # arrays have no column names: the sidecar called them x0, x1, x2 and predict asked the CSV
    # for "the training file's column names", which no file had
    model = str(tmp_path / "m.npz")
    assert run(capsys, "train", "--data", str(data / "X.npy"), "--targets", str(data / "y357.npy"),
               "--epochs", "2", "--quiet", "--save", model)[0] == 0
    X = np.load(data / "X.npy")
    with open(tmp_path / "new.csv", "w") as f:
        f.write("height,width,depth\n")
        f.writelines(",".join(repr(v) for v in row) + "\n" for row in X.tolist())
    code, from_csv, err = run(capsys, "predict", model, str(tmp_path / "new.csv"))
    assert code == 0, err
    code, from_npy, err = run(capsys, "predict", model, str(data / "X.npy"))
    assert code == 0, err
    assert from_csv == from_npy and len(from_csv.splitlines()) == 151
    (tmp_path / "narrow.csv").write_text("height,width\n1,2\n")
    code, _, err = run(capsys, "predict", model, str(tmp_path / "narrow.csv"))
    assert_one_line_error(code, err, "has 2 feature columns but the model expects 3")


def test_train_regression_csv_and_predict(capsys, data, tmp_path):
    model = str(tmp_path / "price.npz")
    code, out, err = run(capsys, "train", "--data", str(data / "price.csv"), "--target", "price",
                         "--epochs", "40", "--batch-size", "16", "--loss", "huber", "--save", model)
    assert code == 0, err
    assert "regression on 1 standardized target" in out
    mae = float(re.search(r"test MAE ([\d.e+-]+)", out).group(1))
    truth = np.array([float(row[0]) for row in read_csv(data / "price.csv")[1:]])
    assert mae < 0.5 * truth.std()

    out_npy = str(tmp_path / "p.npy")
    assert run(capsys, "predict", model, str(data / "price.csv"), "--out", out_npy)[0] == 0
    pred = np.load(out_npy)
    assert pred.shape == (150,)
    assert np.corrcoef(pred, truth)[0, 1] > 0.9                  # in target units, not standardized
    code, out, err = run(capsys, "predict", model, str(data / "price.csv"))
    assert out.splitlines()[0] == "price"
    # every digit: 6 significant ones turned a prediction of 1.7000003e9 into 1.7e+09
    np.testing.assert_array_equal(np.array(out.splitlines()[1:], dtype=pred.dtype), pred)


def test_predict_without_sidecar_uses_raw_features(capsys, tmp_path):
    model = fb.MLP([4, 8, 3], seed=0)
    path = str(tmp_path / "raw.npz")
    model.save(path)
    X = np.random.default_rng(0).standard_normal((5, 4))
    np.save(tmp_path / "X.npy", X)
    code, out, err = run(capsys, "predict", path, str(tmp_path / "X.npy"))
    assert code == 0
    assert "note: no raw.npz.preprocess.json" in err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["label", "prob_0", "prob_1", "prob_2"]
    want = model.predict(X.astype(np.float32)).argmax(axis=1)
    np.testing.assert_array_equal([int(r[0]) for r in rows[1:]], want)


def test_plot_writes_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "curves.png"
    code, _out, err = run(capsys, "train", "--epochs", "3", "--layers", "32", "--quiet", "--plot", str(png))
    assert code == 0, err
    assert png.read_bytes()[:8] == PNG_SIGNATURE


def test_plot_without_matplotlib_says_how_to_install(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # makes `import matplotlib` fail
    code, out, err = run(capsys, "train", "--epochs", "1", "--plot", str(tmp_path / "c.png"))
    assert_one_line_error(code, err, 'pip install "fastbp[plot]"')
    assert out == ""


# ------------------------------------------------- engine features that may be missing
class _OldMLP(fb.MLP):
    """An engine without batchnorm/dropout in MLP and without checkpoint in fit."""

    def __init__(self, sizes, activation="relu", dtype=np.float32, seed=None):
        super().__init__(sizes, activation=activation, dtype=dtype, seed=seed)

    def fit(self, X, y, loss=None, optimizer=None, epochs=1, batch_size=32):
        return super().fit(X, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size)


@pytest.mark.parametrize("option", [["--batchnorm"], ["--dropout", "0.1"], ["--checkpoint", "auto"]])
def test_unavailable_engine_feature(capsys, monkeypatch, option):
    monkeypatch.setattr(fb, "MLP", _OldMLP)
    code, _out, err = run(capsys, "train", "--epochs", "1", *option)
    assert_one_line_error(code, err, f"{option[0]} is not available in this version")


@pytest.mark.parametrize("value, segments", [("auto", 1), ("sqrt", 2), ("3", 3), ("2000", 4),
                                             ("64MB", 1), ("1.5GiB", 1)])
def test_checkpoint_is_planned_and_passed_once(capsys, monkeypatch, value, segments):
    seen = []

    class CheckpointMLP(fb.MLP):
        def fit(self, *args, checkpoint=None, **kwargs):
            seen.append(checkpoint)
            return super().fit(*args, checkpoint=checkpoint, **kwargs)

    monkeypatch.setattr(fb, "MLP", CheckpointMLP)
    code, out, err = run(capsys, "train", "--epochs", "2", "--layers", "16,16,16", "--checkpoint", value)
    assert code == 0, err
    assert isinstance(seen[0], fb.checkpoint.Plan) and seen[1] is None   # fit keeps it for later calls
    assert seen[0].n_segments == segments
    assert f"checkpointing: Plan({segments} segments" in out


def test_checkpoint_budget_too_small(capsys):
    code, _, err = run(capsys, "train", "--epochs", "1", "--checkpoint", "2KiB")
    assert_one_line_error(code, err, "no checkpointing plan fits")


def test_batchnorm_and_dropout_are_passed_through(capsys, monkeypatch):
    seen = {}

    class Recording(fb.MLP):
        def __init__(self, sizes, batchnorm=False, dropout=0.0, **kwargs):
            seen.update(batchnorm=batchnorm, dropout=dropout)
            super().__init__(sizes, **kwargs)

    monkeypatch.setattr(fb, "MLP", Recording)
    code, _out, err = run(capsys, "train", "--epochs", "1", "--layers", "16", "--quiet",
                         "--batchnorm", "--dropout", "0.25")
    assert code == 0, err
    assert seen == {"batchnorm": True, "dropout": 0.25}


# ----------------------------------------------------------------------- errors
def _errors(d):
    return [
        (["train", "--data", str(d / "missing.csv")], "no such file"),
        (["train", "--data", str(d / "bad_quote.csv")], "malformed CSV"),
        (["train", "--data", str(d / "ragged.csv")], "line 2: 2 fields but the header has 3"),
        (["train", "--data", str(d / "text_feature.csv")], "'red' is not a number"),
        (["train", "--data", str(d / "no_header.csv")], "add a header row"),
        (["train", "--data", str(d / "species.csv"), "--target", "nope"], "no column 'nope'"),
        (["train", "--data", str(d / "species.csv"), "--task", "regression"], "holds text labels"),
        (["train", "--data", str(d / "species.csv"), "--loss", "mse"], "regression loss"),
        (["train", "--data", str(d / "X.npy")], "--targets y.npy"),
        (["train", "--data", str(d / "plain.npz"), "--target", "y"], "--target selects a CSV column"),
        (["train", "--data", str(d / "data.xlsx")], "unknown file type"),
        (["train", "--targets", str(d / "y357.npy")], "need --data"),
        (["train", "--threads", "100000"], "--threads 100000 is more than"),
        (["train", "--save", str(d / "nowhere" / "m.npz")], "does not exist"),
        (["train", "--layers", "12,abc"], "argument --layers"),
        (["train", "--epochs", "0"], "argument --epochs: must be at least 1"),
        (["train", "--seed", "-1"], "argument --seed: must be at least 0"),
        (["train", "--val-split", "1.5"], "argument --val-split"),
        (["train", "--lr", "nan"], "argument --lr"),
        (["train", "--optimizer", "adagrad"], "argument --optimizer"),
        (["train", "--checkpoint", "lots"], "argument --checkpoint"),
        (["train", "--checkpoint", "12B"], "at least 1KiB"),
        (["train", "--momentum", "0.9"], "--momentum is for sgd and rmsprop"),
        (["--epochs", "x"], "argument --epochs"),
        (["frobnicate"], "invalid choice"),
        (["predict", str(d / "not_a_model.npz"), str(d / "X.npy")], "is not a fastbp model file"),
        (["predict", str(d / "species.csv"), str(d / "X.npy")], "is not a fastbp model file"),
        (["predict", str(d / "missing.npz"), str(d / "X.npy")], "no such model file"),
        (["predict", str(d / "not_a_model.npz"), str(d / "X.npy"), "--out", "p.txt"], "--out p.txt"),
        (["bench", "--workload", "W9"], "argument --workload"),
        (["bench", "--against", "tensorflow"], "argument --against"),
        (["bench", "--seconds", "-1"], "argument --seconds"),
        (["warmup", "--dtype", "float16"], "argument --dtype"),
    ]


@pytest.mark.parametrize("case", range(len(_errors(__import__("pathlib").Path(".")))))
def test_errors_are_one_line_exit_2(capsys, data, case):
    argv, fragment = _errors(data)[case]
    code, _out, err = run(capsys, *argv)
    assert_one_line_error(code, err, fragment)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a device that is always full)")
def test_write_errors_are_one_line_exit_2(capsys, data, tmp_path):
    """An OSError writing the output (here: a full disk) escaped the one-line handler."""
    model = str(tmp_path / "m.npz")
    assert run(capsys, "train", "--data", str(data / "species.csv"), "--epochs", "1", "--quiet",
               "--save", model)[0] == 0
    os.symlink("/dev/full", tmp_path / "full.csv")
    code, _, err = run(capsys, "predict", model, str(data / "species.csv"), "--out", str(tmp_path / "full.csv"))
    assert_one_line_error(code, err, "No space left on device")


def test_a_closed_stdout_ends_quietly(capsys, data, tmp_path, monkeypatch):
    """fastbp ... | head: the reader closes the pipe; no BrokenPipeError traceback."""
    model = str(tmp_path / "m.npz")
    assert run(capsys, "train", "--data", str(data / "species.csv"), "--epochs", "1", "--quiet",
               "--save", model)[0] == 0

    class ClosedPipe(io.StringIO):
        def __init__(self, fd):
            super().__init__()
            self.fd = fd

        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            return self.fd

    with open(tmp_path / "stdout", "w") as target:
        monkeypatch.setattr(sys, "stdout", ClosedPipe(target.fileno()))
        code = main(["predict", model, str(data / "species.csv")])
    monkeypatch.undo()
    assert code == 1
    assert capsys.readouterr().err == ""


def test_predict_feature_mismatch(capsys, data, tmp_path):
    model = str(tmp_path / "m.npz")
    assert run(capsys, "train", "--data", str(data / "species.csv"), "--epochs", "1", "--quiet",
               "--save", model)[0] == 0
    (tmp_path / "fewer.csv").write_text("a,b\n1,2\n")
    code, _, err = run(capsys, "predict", model, str(tmp_path / "fewer.csv"))
    assert_one_line_error(code, err, "lacks the feature column(s) 'c'")
    np.save(tmp_path / "wide.npy", np.ones((2, 5)))
    code, _out, err = run(capsys, "predict", model, str(tmp_path / "wide.npy"))
    assert_one_line_error(code, err, "has 5 feature columns but the model expects 3")


def test_help_and_version(capsys):
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0 and "--targets Y.npy" in out and ".npz   arrays X" in out
    code, out, _ = run(capsys, "predict", "--help")
    assert code == 0 and "preprocess.json" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"fastbp {fb.__version__}"


# ------------------------------------------------------------ info, warmup, bench
def test_info(capsys):
    code, out, err = run(capsys, "info")
    assert code == 0, err
    for key in ("fastbp", "numba", "numpy", "python", "threads", "threading layer", "numba cache",
                "SLP vectorizer", "CPU", "BLAS", "layer products", "subnormals"):
        assert re.search(rf"^{re.escape(key)}\s", out, re.MULTILINE), key
    layer = re.search(r"^threading layer\s+(\S+)", out, re.MULTILINE).group(1)
    assert layer in ("omp", "tbb", "workqueue")


def test_warmup_float32(capsys):
    from numba import types
    from fastbp.kernels import dropout, norm
    tables = [module._LINKED.tables[types.float32] for module in (norm, dropout)]
    for table in tables:
        table.addresses[:] = 0     # as in a fresh process (warmup links them again)
    code, out, err = run(capsys, "warmup", "--dtype", "float32")
    assert code == 0, err
    assert re.search(r"^float32: [\d.]+ s$", out, re.MULTILINE)
    assert "float64" not in out and "total" in out
    assert all(table.linked for table in tables)     # BatchNorm's and dropout's callbacks too


def test_bench_w3(capsys):
    code, out, err = run(capsys, "bench", "--workload", "W3", "--seconds", "0.01", "--repeats", "1",
                         "--against", "numpy,torch")
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("W3"))
    rates = [float(v.replace(",", "")) for v in row.split()[3:5]]
    assert all(r > 0 for r in rates)                              # fastbp and numpy columns
    assert "W1" not in out
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "torch is not installed" in out
    assert "jax" not in out.split("\n")[1]                        # not asked for


# -------------------------------------------------------------------- subprocess
def test_python_dash_m_smoke():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "fastbp", "train", "--epochs", "2", "--quiet"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout and "Traceback" not in proc.stderr
