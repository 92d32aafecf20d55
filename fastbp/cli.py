"""The ``fastbp`` command line.

``fastbp`` (or ``python -m fastbp``) with no arguments runs ``fastbp train``: the
default MLP on the embedded 8×8 digits.  Subcommands: ``train``, ``predict``,
``bench``, ``info``, ``warmup``; ``fastbp COMMAND --help`` explains each.

Expected failures (a missing file, bad data, a bad option value) print one line
``fastbp COMMAND: error: ...`` on stderr and exit with status 2; set
``FASTBP_DEBUG=1`` to get the traceback instead.
"""
import argparse
import csv
import inspect
import io
import os
import re
import sys
import time

import numpy as np

from . import __version__
from ._jit import jit_parallel, prange
from .tabular import (
    CSV_EXTENSIONS,
    DataError,
    Preprocessing,
    infer_task,
    load_table,
    model_path,
    sidecar_path,
)

ACTIVATION_NAMES = ("relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh",
                    "softplus", "identity")
CLASSIFICATION_LOSSES = ("cross_entropy", "bce")
REGRESSION_LOSSES = ("mse", "l1", "huber")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
DEFAULT_LR = {"adam": 1e-3, "adamw": 1e-3, "sgd": 0.01, "rmsprop": 1e-3}
_BYTES = re.compile(r"^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


class CLIError(Exception):
    """An expected failure: printed as one line, exit status 2."""


# ----------------------------------------------------------------- argument types
def _whole_number(text, minimum):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def _positive_int(text):
    return _whole_number(text, 1)


def _non_negative_int(text):
    return _whole_number(text, 0)


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _fraction(text):
    """A number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _layers(text):
    """``"128,64"`` → [128, 64]; ``""`` or ``"none"`` → no hidden layer."""
    if text.strip().lower() in ("", "none"):
        return []
    widths = []
    for part in text.split(","):
        try:
            width = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: {part.strip()!r} is not a width; give comma-separated positive integers "
                "like 128,64") from None
        if width < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: widths must be positive, got {width}")
        widths.append(width)
    return widths


def _checkpoint(text):
    """``auto``/``sqrt``, a segment count (``4``) or a memory budget with a unit (``512MB``, ``2GiB``).

    Returns ``"auto"``/``"sqrt"``, ``("segments", N)`` or the budget as an int number of bytes
    (the forms ``fb.checkpoint.plan`` takes).
    """
    text = text.strip()
    if text.lower() in ("auto", "sqrt"):
        return text.lower()
    if text.isdigit():
        if int(text) < 1:
            raise argparse.ArgumentTypeError("the segment count must be at least 1")
        return ("segments", int(text))
    match = _BYTES.match(text)
    if match:
        budget = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
        if budget < 2**10:
            raise argparse.ArgumentTypeError(f"{text!r}: a memory budget must be at least 1KiB")
        return budget
    raise argparse.ArgumentTypeError(f"{text!r}: use auto, sqrt, a segment count such as 4, "
                                     "or a memory budget with a unit such as 512MB or 2GiB")


def _comma_list(choices):
    def parse(text):
        items = [item.strip().lower() for item in text.split(",") if item.strip()]
        bad = [item for item in items if item not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {','.join(choices)}")
        return items
    return parse


def _workload(text):
    name = text.strip().upper()
    from .bench import WORKLOADS
    if name not in WORKLOADS:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(WORKLOADS)}")
    return name


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what is wrong, and where the help is)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# ------------------------------------------------------------------------- parser
TRAIN_DESCRIPTION = """\
Train an MLP and report per-epoch loss and accuracy (or MAE), the held-out
accuracy (or MAE/RMSE) and the training speed in samples/s.  Without --data it
trains on the embedded 8x8 handwritten digits (1,797 samples, 10 classes).

Data files (--data), chosen by extension:
  .csv   a header row, then one sample per line; numeric feature columns and a
         target column (--target, default the last column) of numbers or labels
  .npz   arrays X (samples x features) and y (targets)
  .npy   the features X; the targets come from a second file: --targets y.npy

Features are standardized with the mean and std of the training split.  For
classification, labels that are not 0..C-1 (strings, or 3,5,7) are mapped to
class indices; regression targets are standardized too.  --save writes the
model (MODEL.npz) and this preprocessing (MODEL.npz.preprocess.json), which
'fastbp predict' applies to new data.
"""


def build_parser():
    parser = _Parser(prog="fastbp", description="Fast feed-forward neural networks on CPUs. "
                     "Without a command, runs 'fastbp train' (the digits demo).")
    parser.add_argument("--version", action="version", version=f"fastbp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser("train", help="train an MLP (default: on the embedded digits)",
                           description=TRAIN_DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    data = train.add_argument_group("data")
    data.add_argument("--data", metavar="FILE", help="training data: .csv, .npz or .npy (see above); "
                      "default: the embedded digits")
    data.add_argument("--targets", metavar="Y.npy", help="targets for a .npy --data file")
    data.add_argument("--target", metavar="COLUMN", help="CSV target column, by name or 0-based index "
                      "(default: the last column)")
    data.add_argument("--task", choices=("classification", "regression"),
                      help="default: classification when the target holds labels or at most 20 distinct "
                      "integers, else regression")
    data.add_argument("--val-split", type=_fraction, default=0.2, metavar="F",
                      help="fraction held out (never trained on) for per-epoch validation and the final "
                      "test score; 0 trains on everything (default 0.2)")
    net = train.add_argument_group("model")
    net.add_argument("--layers", type=_layers, default=[128, 64], metavar="W1,W2",
                     help="hidden layer widths, comma-separated; 'none' for no hidden layer (default 128,64)")
    net.add_argument("--activation", choices=ACTIVATION_NAMES, default="relu", metavar="NAME",
                     help=f"hidden activation: {', '.join(ACTIVATION_NAMES)} (default relu)")
    net.add_argument("--batchnorm", action="store_true", help="batch normalization after each hidden Linear")
    net.add_argument("--dropout", type=_fraction, metavar="P", help="dropout probability after each hidden "
                     "activation (default: none)")
    net.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                     help="floating-point type of the model (default float32)")
    fit = train.add_argument_group("training")
    fit.add_argument("--loss", choices=CLASSIFICATION_LOSSES + REGRESSION_LOSSES, metavar="NAME",
                     help="classification: cross_entropy (default) or bce (two classes); "
                     "regression: mse (default), l1 or huber")
    fit.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="default adam")
    fit.add_argument("--lr", type=_positive_float, metavar="RATE",
                     help="learning rate (default 1e-3; 0.01 for sgd)")
    fit.add_argument("--momentum", type=_fraction, metavar="M",
                     help="momentum of sgd (default 0.9) and rmsprop (default 0)")
    fit.add_argument("--epochs", type=_positive_int, default=30, help="default 30")
    fit.add_argument("--batch-size", type=_positive_int, default=32, metavar="N", help="default 32")
    fit.add_argument("--checkpoint", type=_checkpoint, metavar="auto|sqrt|N|BYTES",
                     help="gradient checkpointing (recompute activations in backward to save memory): "
                     "auto (only when memory is short), sqrt, N uniform segments, or a memory budget "
                     "such as 512MB or 2GiB (default: off)")
    fit.add_argument("--seed", type=_non_negative_int, default=0, help="seeds initialization, shuffling and the split "
                     "(default 0)")
    fit.add_argument("--threads", type=_positive_int, metavar="N", help="threads for the kernels "
                     "(default: all cores)")
    out = train.add_argument_group("output")
    out.add_argument("--save", metavar="MODEL.npz", help="write the trained model and its "
                     "MODEL.npz.preprocess.json for 'fastbp predict'")
    out.add_argument("--plot", metavar="CURVES.png", help="save loss and accuracy curves as a PNG "
                     "(needs matplotlib: pip install \"fastbp[plot]\")")
    out.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines; "
                     "print only the results")
    train.set_defaults(func=_train)

    predict = sub.add_parser(
        "predict", help="predict with a saved model",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Apply a model saved by 'fastbp train --save' to new data.\n\n"
        "DATA is a .csv with a header (the training feature columns are picked by name; other\n"
        "columns such as the target are ignored), an .npz with an array X, or a .npy of X.\n"
        "The preprocessing saved beside the model (MODEL.npz.preprocess.json) is applied;\n"
        "without it the features are used as given and classes are output indices.\n\n"
        "Output: classification gives the predicted label and one probability per class\n"
        "(softmax), regression the predicted values.\n"
        "  .csv  a header row (label,prob_<class>,... or the target name), one row per sample\n"
        "  .npy  the predicted labels (classification) or values (regression)\n"
        "  .npz  arrays label, proba, classes (classification) or value (regression)\n"
        "Without --out the CSV goes to stdout.")
    predict.add_argument("model", metavar="MODEL", help="a model file written by 'fastbp train --save'")
    predict.add_argument("data", metavar="DATA", help="features: .csv, .npz or .npy")
    predict.add_argument("--out", metavar="FILE",
                         help="output file: .csv, .npy or .npz (default: CSV to stdout)")
    predict.add_argument("--batch-size", type=_positive_int, default=256, metavar="N",
                         help="rows per forward pass (default 256)")
    predict.set_defaults(func=_predict)

    from .bench import PEERS, WORKLOADS
    bench = sub.add_parser(
        "bench", help="training-step samples/s of fastbp beside numpy, torch and jax",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Side-by-side samples/s of a full float32 training step (forward, softmax\n"
        "cross-entropy, backward, Adam) on MLPs with ReLU:\n" +
        "".join(f"  {name}  {desc} batch {batch}\n" for name, (desc, _, batch) in WORKLOADS.items()) +
        "fastbp runs model.train_step; numpy a hand-written reference; torch eager mode;\n"
        "jax a jit-compiled step.  Frameworks that are not installed are skipped.")
    bench.add_argument("--workload", nargs="+", type=_workload, metavar="W",
                       help="workloads to run, e.g. --workload W1 W3 "
                       f"(default: all of {', '.join(WORKLOADS)})")
    bench.add_argument("--against", type=_comma_list(PEERS), default=list(PEERS), metavar="LIST",
                       help="comma-separated peers from numpy,torch,jax (default: all three)")
    bench.add_argument("--repeats", type=_positive_int, default=3, help="timed runs per cell; the table "
                       "shows the median (default 3)")
    bench.add_argument("--seconds", type=_positive_float, default=0.2, help="minimum length of each timed "
                       "run (default 0.2)")
    bench.add_argument("--threads", type=_positive_int, metavar="N", help="threads for every framework "
                       "(default: fastbp's current count)")
    bench.set_defaults(func=_bench)

    info = sub.add_parser("info", help="versions, threads, Numba cache, CPU features and BLAS",
                          description="Print what affects fastbp's speed on this machine: versions, thread "
                          "count and threading layer, the Numba cache directory, the SLP vectorizer, the "
                          "CPU's SIMD features and the BLAS numpy uses.")
    info.set_defaults(func=_info)

    warmup = sub.add_parser("warmup", help="compile and cache the kernels ahead of time",
                            description="Compile the kernels a default model needs (fit, predict, forward, "
                            "backward, optimizer step) and BatchNorm's and dropout's, and write them to "
                            "Numba's cache, so that later processes start in milliseconds.  Prints the "
                            "time taken.")
    warmup.add_argument("--dtype", choices=("float32", "float64"),
                        help="compile for one dtype only (default: both)")
    warmup.set_defaults(func=_warmup)
    return parser


def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 2 usage or data error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["train"] + argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:          # --help, --version and usage errors (already printed)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"fastbp {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (fastbp predict ... | head): stop quietly, and keep Python's
        # flush at exit from raising again on the closed stdout
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (CLIError, DataError, OSError, ValueError, MemoryError) as exc:
        if os.environ.get("FASTBP_DEBUG"):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"fastbp {args.command}: error: {message}", file=sys.stderr)
        return 2


# -------------------------------------------------------------------------- helpers
def _set_threads(threads):
    import numba

    import fastbp as fb
    if threads is None:
        return
    limit = numba.config.NUMBA_NUM_THREADS
    if threads > limit:
        raise CLIError(f"--threads {threads} is more than the {limit} threads Numba started with; "
                       f"use at most {limit} (or set NUMBA_NUM_THREADS before starting)")
    fb.set_num_threads(threads)


def _check_output_dir(path, option):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"{option} {path}: the folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise CLIError(f"{option} {path}: the folder {folder} is not writable")


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError('--plot needs matplotlib, which is not installed; '
                       'pip install "fastbp[plot]"') from None


def _accepts(func, name):
    """Whether ``func`` takes the keyword ``name`` (engine features land over time)."""
    params = inspect.signature(func).parameters
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _unavailable(option):
    return CLIError(f"{option} is not available in this version of fastbp; drop the option "
                    "or upgrade fastbp")


def _call_with_feature(func, options, *args, **kwargs):
    """Call ``func``; a TypeError about one of ``options`` (keyword → CLI flag) means it is unsupported."""
    for key, flag in options.items():
        if key in kwargs and not _accepts(func, key):
            raise _unavailable(flag)
    try:
        return func(*args, **kwargs)
    except TypeError as exc:
        for key, flag in options.items():
            if key in kwargs and key in str(exc):
                raise _unavailable(flag) from None
        raise


def _softmax(out):
    z = out.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _sigmoid(z):
    z = np.asarray(z, dtype=np.float64)
    return np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))


# --------------------------------------------------------------------------- train
def _training_data(args):
    """(Table, description) from --data, or the embedded digits."""
    import fastbp as fb
    if args.data is None:
        if args.targets or args.target:
            raise CLIError("--targets/--target need --data FILE")
        X, y = fb.data.load_digits(dtype=np.float64)
        from .tabular import Table
        return Table(X, y.astype(np.float64), [f"pixel_{i}" for i in range(X.shape[1])], "digit"), "digits"
    table = load_table(args.data, target=args.target, targets_path=args.targets)
    return table, os.path.basename(args.data)


def _make_optimizer(args, params):
    import fastbp as fb
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    if args.optimizer == "sgd":
        return fb.optim.SGD(params, lr=lr, momentum=0.9 if args.momentum is None else args.momentum)
    if args.optimizer == "rmsprop":
        return fb.optim.RMSprop(params, lr=lr, momentum=args.momentum or 0.0)
    if args.momentum is not None:
        raise CLIError(f"--momentum is for sgd and rmsprop; {args.optimizer} has betas instead")
    return (fb.optim.Adam if args.optimizer == "adam" else fb.optim.AdamW)(params, lr=lr)


def _prepare(args, table):
    """Task, loss, targets as the model wants them, the split and the fitted preprocessing."""
    y = table.y
    task = args.task or infer_task(y)
    loss_name = args.loss or ("cross_entropy" if task == "classification" else "mse")
    if task == "classification" and loss_name not in CLASSIFICATION_LOSSES:
        raise CLIError(f"--loss {loss_name} is a regression loss but the task is classification; "
                       f"use {' or '.join(CLASSIFICATION_LOSSES)}, or --task regression")
    if task == "regression" and loss_name not in REGRESSION_LOSSES:
        raise CLIError(f"--loss {loss_name} is a classification loss but the task is regression; "
                       f"use {', '.join(REGRESSION_LOSSES)}, or --task classification")
    if task == "regression" and y.dtype.kind == "U":
        raise CLIError(f"the target {table.target_name!r} holds text labels, which cannot be regressed; "
                       "use --task classification or pick a numeric --target")
    if task == "classification" and y.ndim != 1:
        raise CLIError(f"classification needs one label per sample, but y has shape {y.shape}")
    if task == "classification" and y.dtype.kind != "U" and not np.all(y == np.round(y)):
        raise CLIError(f"the target {table.target_name!r} has non-integer numbers; class labels must be "
                       "integers or text (or use --task regression)")

    n = len(table)
    order = np.random.default_rng(args.seed).permutation(n)
    n_val = round(n * args.val_split)
    if args.val_split > 0:
        n_val = max(1, n_val)
    if n - n_val < 1:
        raise CLIError(f"only {n} samples: nothing is left to train on after --val-split {args.val_split}")
    val, tr = order[:n_val], order[n_val:]

    y_reg = None
    if task == "regression":
        y_reg = y.reshape(n, -1)
    prep = Preprocessing.fit(table.X[tr], table.feature_names, table.target_name, task,
                             None if y_reg is None else y_reg[tr], loss=loss_name, named_features=table.named)
    if task == "classification":
        codes = prep.encode_labels(y)            # classes from all samples: the split may miss one
        n_classes = len(prep.classes)
        if n_classes < 2:
            raise CLIError(f"the target {table.target_name!r} has a single class ({prep.classes[0]!r}); "
                           "classification needs at least two")
        if loss_name == "bce":
            if n_classes != 2:
                raise CLIError(f"--loss bce is for two classes, the target has {n_classes}; "
                               "use --loss cross_entropy")
            targets, n_out = codes.astype(np.float64).reshape(n, 1), 1
        else:
            targets, n_out = codes, n_classes
    else:
        targets, n_out = prep.scale_targets(y_reg), y_reg.shape[1]
    return task, loss_name, prep, tr, val, targets, n_out


def _train(args):
    import fastbp as fb

    if args.plot:
        _require_matplotlib()
        _check_output_dir(args.plot, "--plot")
    if args.save:
        _check_output_dir(model_path(args.save), "--save")
    if args.checkpoint is not None and not _accepts(fb.MLP.fit, "checkpoint"):
        raise _unavailable("--checkpoint")
    _set_threads(args.threads)
    table, source = _training_data(args)
    task, loss_name, prep, tr, val, targets, n_out = _prepare(args, table)
    dtype = np.dtype(args.dtype)
    Xtr, ytr = prep.transform(table.X[tr], dtype), targets[tr]
    Xval, yval = prep.transform(table.X[val], dtype), targets[val]
    if ytr.dtype.kind == "f":
        ytr, yval = ytr.astype(dtype), yval.astype(dtype)

    sizes = [Xtr.shape[1]] + args.layers + [n_out]
    extra = {}
    if args.batchnorm:
        extra["batchnorm"] = True
    if args.dropout is not None:
        extra["dropout"] = args.dropout
    model = _call_with_feature(fb.MLP, {"batchnorm": "--batchnorm", "dropout": "--dropout"}, sizes,
                               activation=args.activation, dtype=dtype, seed=args.seed, **extra)
    optimizer = _make_optimizer(args, model.parameters())
    loss = fb.losses.get_loss(loss_name)
    # fit's checkpoint setting holds for later calls too: give it once, with the first epoch
    plan = _checkpoint_plan(model, args.checkpoint, min(args.batch_size, len(Xtr)))
    fit_extra = {} if plan is None else {"checkpoint": plan}

    has_val = len(val) > 0
    metric = loss.metric
    what = (f"{len(prep.classes)} classes" if task == "classification" else
            f"regression on {n_out} standardized target(s); "
            "per-epoch loss and MAE are in standard deviations")
    if not args.quiet:
        print(f"{source}: {len(tr)} train / {len(val)} held-out samples, {Xtr.shape[1]} features, {what}")
        print(f"model {'-'.join(map(str, sizes))} ({args.activation}), {model.num_parameters:,} parameters, "
              f"{dtype.name}, {loss_name} loss, {args.optimizer}, {fb.get_num_threads()} thread(s)")
        if plan is not None and not isinstance(plan, (str, int, tuple)):
            print(f"checkpointing: {plan!r}")

    history = {"loss": [], metric: [], "val_loss": [], "val_" + metric: []}
    epoch_times = []
    n_batches = -(-len(Xtr) // args.batch_size)
    bars = not args.quiet and sys.stderr.isatty()        # elsewhere (pipes, logs): plain lines
    prefix = "val_" if has_val else ""
    width = len(str(args.epochs))
    for epoch in range(args.epochs):
        bar = _progress_bar(f"epoch {epoch + 1:>{width}}/{args.epochs}", n_batches) if bars else None
        try:
            t0 = time.perf_counter()
            logs = _call_with_feature(model.fit, {"checkpoint": "--checkpoint"}, Xtr, ytr, loss=loss,
                                      optimizer=optimizer, epochs=1, batch_size=args.batch_size,
                                      **(fit_extra if epoch == 0 else {})).history
            epoch_times.append(time.perf_counter() - t0)
            if bar is not None:
                bar.update(n_batches)                  # the rate it shows is training only
            history["loss"].append(logs["loss"][-1])
            scores = model.evaluate(Xval, yval, loss=loss) if has_val else model.evaluate(Xtr, ytr, loss=loss)
            if has_val:
                history["val_loss"].append(scores["loss"])
            history[prefix + metric].append(scores[metric])
            val_loss = f"  val_loss {scores['loss']:.4f}" if has_val else ""
            summary = f"loss {logs['loss'][-1]:.4f}{val_loss}  {prefix}{metric} {scores[metric]:.4f}"
            compiling = ", includes compiling" if epoch == 0 else ""
            if bar is not None:
                bar.set_postfix_str(summary + (" (includes compiling)" if epoch == 0 else ""))
            elif not args.quiet:
                print(f"epoch {epoch + 1:>{width}}/{args.epochs}  {summary}  "
                      f"({epoch_times[-1]:.2f} s{compiling})")
        finally:
            if bar is not None:
                bar.close()

    _report(args, model, task, prep, loss, Xval, yval, Xtr, ytr, epoch_times, len(tr), history, metric)
    if args.save:
        path = model_path(args.save)
        model.save(path)
        prep.save(sidecar_path(path))
        print(f"saved {path} and {sidecar_path(path)}")
    if args.plot:
        _plot(history, metric, args.plot)
        print(f"saved {args.plot}")
    return 0


def _checkpoint_plan(model, spec, batch_size):
    """``--checkpoint`` → what ``fit(checkpoint=...)`` takes: a ``fb.checkpoint.Plan`` when the
    planner is there (so a segment count is never read as bytes, and an impossible budget fails
    before training), else the raw value."""
    import fastbp as fb
    if spec is None:
        return None
    planner = getattr(getattr(fb, "checkpoint", None), "plan", None)
    if planner is None:                       # fit itself reads a small int as a segment count
        return spec[1] if isinstance(spec, tuple) else spec
    return planner(model, batch_size, spec)


def _progress_bar(desc, n_batches):
    """One epoch's tqdm bar over its batches, on stderr; it stays on screen as that epoch's line."""
    from tqdm import tqdm
    return tqdm(total=n_batches, desc=desc, unit="batch", file=sys.stderr, leave=True, dynamic_ncols=True)


def _report(args, model, task, prep, loss, Xval, yval, Xtr, ytr, epoch_times, n_train, history, metric):
    held_out = len(Xval) > 0
    X, y = (Xval, yval) if held_out else (Xtr, ytr)
    where = (f"on {len(Xval)} held-out samples" if held_out else
             "on the training data (--val-split 0 holds nothing out)")
    if task == "classification":
        acc = history[("val_" if held_out else "") + metric][-1]
        print(f"{'test' if held_out else 'train'} accuracy {acc:.4f} {where}")
    else:
        pred = prep.unscale_targets(model.predict(X).astype(np.float64))
        true = prep.unscale_targets(y.astype(np.float64))
        err = pred - true
        print(f"{'test' if held_out else 'train'} MAE {np.mean(np.abs(err)):.6g}, "
              f"RMSE {np.sqrt(np.mean(err ** 2)):.6g} (target units) {where}")
    if len(epoch_times) > 1:
        rate = n_train * (len(epoch_times) - 1) / sum(epoch_times[1:])
        timed = "epoch 2" if len(epoch_times) == 2 else f"epochs 2-{len(epoch_times)}"
        print(f"training speed {rate:,.0f} samples/s over {timed} (epoch 1 is excluded: "
              "it includes compiling or loading the Numba kernels)")
    else:
        print(f"training speed {n_train / epoch_times[0]:,.0f} samples/s (one epoch, which includes "
              "compiling or loading the Numba kernels; train 2+ epochs for a steady-state number)")


def _plot(history, metric, path):
    """Loss and accuracy (or MAE) curves per epoch, via matplotlib's Agg canvas (no GUI, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax_loss, ax_metric = fig.subplots(1, 2)
    ax_loss.plot(epochs, history["loss"], label="train loss")
    if history["val_loss"]:
        ax_loss.plot(epochs, history["val_loss"], label="validation loss")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    for key, label in ((metric, f"train {metric}"), ("val_" + metric, f"validation {metric}")):
        if history[key]:
            ax_metric.plot(epochs, history[key], label=label)
    ax_metric.set(xlabel="epoch", ylabel=metric, title=metric)
    ax_metric.legend()
    for ax in (ax_loss, ax_metric):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.savefig(path, dpi=100)


# ------------------------------------------------------------------------- predict
def _predict(args):
    import fastbp as fb
    if args.out:
        ext = os.path.splitext(args.out)[1].lower()
        if ext not in (".csv", ".npy", ".npz"):
            raise CLIError(f"--out {args.out}: use a .csv, .npy or .npz file name")
        _check_output_dir(args.out, "--out")
    path = args.model
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.exists(path):
        raise CLIError(f"{args.model}: no such model file; train one with 'fastbp train --save MODEL.npz'")
    try:
        model = fb.load(path)
    except ValueError as exc:
        if "not a fastbp model file" not in str(exc):
            raise
        raise CLIError(f"{args.model} is not a fastbp model file; give a model written by "
                       "'fastbp train --save MODEL.npz' or model.save()") from None
    side = sidecar_path(path)
    prep = Preprocessing.load(side) if os.path.exists(side) else None
    if prep is None:
        print(f"fastbp predict: note: no {os.path.basename(side)} beside the model; using the features as "
              "given and class indices as labels", file=sys.stderr)

    is_csv = os.path.splitext(args.data)[1].lower() in CSV_EXTENSIONS
    # columns by name when the model was trained on named ones (a CSV); else in order
    features = prep.feature_names if prep is not None and is_csv and prep.named_features else None
    X = load_table(args.data, require_target=False, features=features).X
    if X.shape[1] != model.in_features:
        raise CLIError(f"{args.data} has {X.shape[1]} feature columns but the model expects "
                       f"{model.in_features}")
    X = prep.transform(X, model.dtype) if prep else X.astype(model.dtype)
    out = model.predict(X, batch_size=args.batch_size)

    task = prep.task if prep else ("classification" if model.out_features > 1 else "regression")
    if task == "classification":
        if model.out_features == 1:                    # one logit: BCEWithLogits
            p1 = _sigmoid(out[:, 0])
            proba = np.stack([1 - p1, p1], axis=1)
        else:
            proba = _softmax(out)
        classes = prep.classes if prep and prep.classes else list(range(proba.shape[1]))
        if len(classes) != proba.shape[1]:
            raise CLIError(f"{side} lists {len(classes)} classes but the model has {proba.shape[1]}; "
                           "the two files do not belong together")
        labels = np.array([classes[i] for i in proba.argmax(axis=1)])
        _write_classification(args.out, labels, proba, classes)
    else:
        values = out.astype(np.float64)
        if prep and prep.y_mean is not None:
            values = prep.unscale_targets(values)
        name = prep.target_name if prep and prep.target_name else "value"
        _write_regression(args.out, values, name)
    if args.out:
        print(f"wrote {len(X)} predictions to {args.out}", file=sys.stderr)
    return 0


def _fmt(value):
    """A probability: 6 significant digits."""
    return f"{value:.6g}"


def _fmt_exact(value):
    """A predicted value: the shortest text that reads back as the same number of its dtype
    (6 digits turned 1.7000003e9 into 1.7e+09)."""
    return str(value)


def _write_classification(out, labels, proba, classes):
    if out is None or out.lower().endswith(".csv"):
        rows = ([str(label)] + [_fmt(p) for p in row] for label, row in zip(labels, proba))
        _write_csv(out, ["label"] + [f"prob_{c}" for c in classes], rows)
    elif out.lower().endswith(".npy"):
        np.save(out, labels)
    else:
        np.savez(out, label=labels, proba=proba, classes=np.array(classes))


def _write_regression(out, values, name):
    columns = [name] if values.shape[1] == 1 else [f"{name}_{j}" for j in range(values.shape[1])]
    if out is None or out.lower().endswith(".csv"):
        _write_csv(out, columns, ([_fmt_exact(v) for v in row] for row in values))
    elif out.lower().endswith(".npy"):
        np.save(out, values[:, 0] if values.shape[1] == 1 else values)
    else:
        np.savez(out, value=values[:, 0] if values.shape[1] == 1 else values)


def _write_csv(out, header, rows):
    if out is None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        sys.stdout.write(buffer.getvalue())
        return
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


# --------------------------------------------------------------------------- bench
def _bench(args):
    from . import bench
    bench.import_torch_first(args.against)     # before _set_threads starts Numba's pool
    _set_threads(args.threads)
    bench.run(workloads=args.workload, against=args.against, repeats=args.repeats, seconds=args.seconds)
    return 0


# ---------------------------------------------------------------------------- info
@jit_parallel
def _probe_kernel(out):
    for i in prange(out.shape[0]):
        out[i] = i


def threading_layer():
    """Numba's threading layer, after running a tiny parallel kernel (it is chosen lazily)."""
    import numba
    _probe_kernel(np.zeros(4))
    try:
        return numba.threading_layer()
    except ValueError as exc:
        return f"unknown ({exc})"


def numba_cache_dir():
    """(directory, writable) where fastbp's kernels are cached, or (None, reason)."""
    from . import _jit
    if not _jit.CACHE:
        return None, "caching is off (FASTBP_CACHE=0)"
    from numba.core.registry import CPUDispatcher

    from . import kernels
    modules = [m for name, m in sorted(sys.modules.items()) if name.startswith(kernels.__name__ + ".")]
    for module in modules:
        for obj in vars(module).values():
            cache = getattr(obj, "_cache", None) if isinstance(obj, CPUDispatcher) else None
            folder = getattr(cache, "_cache_path", None)
            if folder:            # the folder Numba's locator picked (in-tree, user-wide or NUMBA_CACHE_DIR)
                return folder, _writable(folder)
    return None, "no cached kernel found"


def _writable(folder):
    import tempfile
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False


SIMD_FEATURES = ("sse2", "sse4.2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl",
                 "avx512vnni", "avx512bf16", "avx512fp16", "amx-tile", "neon", "sve", "sve2", "vsx")


def cpu_features():
    """(CPU name, the SIMD features LLVM sees on this host)."""
    import llvmlite.binding as llvm
    flags = llvm.get_host_cpu_features()
    enabled = {name for name, on in flags.items() if on}
    return llvm.get_host_cpu_name(), [f for f in SIMD_FEATURES if f in enabled]


def blas_info():
    """A one-line description of the BLAS numpy uses (threadpoolctl when installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        entries = [d for d in threadpool_info() if d.get("user_api") == "blas"]
        if entries:
            return "; ".join(f"{d.get('internal_api')} {d.get('version')} ({d.get('architecture') or '?'}, "
                             f"{d.get('num_threads')} threads) at {d.get('filepath')}" for d in entries)
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
    except (TypeError, KeyError, AttributeError):      # numpy < 1.25 has no mode="dicts"
        return "unknown (install threadpoolctl for details)"
    return f"{blas.get('name')} {blas.get('version')} (from numpy's build configuration)"


def _info(args):
    import platform

    import llvmlite
    import numba

    import fastbp as fb

    from . import _jit
    from .kernels.gemm import BLAS_MAX_MNK
    cache, writable = numba_cache_dir()
    cpu, simd = cpu_features()
    rows = [
        ("fastbp", __version__),
        ("python", (f"{platform.python_version()} ({platform.python_implementation()}) on "
                    f"{platform.system()} {platform.machine()}")),
        ("numpy", np.__version__),
        ("numba", f"{numba.__version__} (llvmlite {llvmlite.__version__})"),
        ("threads", (f"{fb.get_num_threads()} of {numba.config.NUMBA_NUM_THREADS} "
                     "(NUMBA_NUM_THREADS; change with --threads or fastbp.set_num_threads)")),
        ("threading layer", threading_layer()),
        ("numba cache", f"{cache} ({'writable' if writable else 'NOT writable: kernels recompile every run'})"
                        if cache else writable),
        ("SLP vectorizer", "on" if _jit.SLP_VECTORIZED else
                           "OFF (NUMBA_SLP_VECTORIZE=0 was set; GEMM kernels run far slower)"),
        ("CPU", f"{cpu}; SIMD: {' '.join(simd) or 'none detected'}"),
        ("BLAS", blas_info()),
        ("layer products", (f"own packed GEMM; small ones (M*N*K <= {BLAS_MAX_MNK}) through SciPy's BLAS"
                            if _jit.BLAS_SMALL else
                            f"own packed GEMM for all (FASTBP_GEMM={_jit.GEMM_BACKEND}"
                            f"{'' if _jit.GEMM_BACKEND == 'own' else ', SciPy not installed'})")),
        ("subnormals", ("flushed to zero in fastbp's calls (fastbp.set_flush_denormal)" if fb.get_flush_denormal()
                        else "gradual underflow (fastbp.set_flush_denormal(False))")),
    ]
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if var in os.environ:
            rows.append((var, os.environ[var]))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


# -------------------------------------------------------------------------- warmup
def _warmup(args):
    import fastbp as fb
    from fastbp.kernels import dropout, norm
    dtypes = [args.dtype] if args.dtype else ["float32", "float64"]
    total = time.perf_counter()
    rng = np.random.default_rng(0)
    for name in dtypes:
        t0 = time.perf_counter()
        dtype = np.dtype(name)
        X = rng.standard_normal((48, 64)).astype(dtype)
        y = rng.integers(0, 10, 48).astype(np.int64)
        model = fb.MLP([64, 128, 64, 10], activation="relu", dtype=dtype, seed=0)
        loss = fb.CrossEntropyLoss()
        opt = fb.optim.Adam(model.parameters())
        model.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=32, validation_data=(X, y))
        model.predict(X)
        model.evaluate(X, y, loss=loss)
        model.train_step(X[:32], y[:32], loss, opt)
        out = model.forward(X[:32])
        _, dout = loss(out, y[:32])
        model.backward(dout)
        opt.step()
        norm.link(dtype)      # compiled only for models that use them (kernels/linked.py's LazyTable)
        dropout.link(dtype)
        print(f"{name}: {time.perf_counter() - t0:.2f} s")
    cache, writable = numba_cache_dir()
    if cache and writable:
        where = f"cached in {cache}"
    else:
        where = f"not cached: {writable if not cache else cache + ' is not writable'}"
    print(f"total {time.perf_counter() - total:.2f} s; kernels {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
