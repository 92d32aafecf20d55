"""Loading user data for the command line: tables in, arrays and a reproducible preprocessing out.

Three file layouts (chosen by extension):

* ``.csv`` (``.tsv``/``.txt`` too): a header row, then one sample per line.
  Every feature column must be numeric; the target column (default: the last)
  may hold numbers or strings.  The delimiter is ``,`` unless the header uses
  tabs or semicolons instead.
* ``.npz``: arrays ``X`` (N, F) and ``y`` (N,) or (N, k) (``y`` optional for predict).
* ``.npy``: the feature matrix ``X``; the targets come from a second ``.npy`` file.

``Preprocessing`` holds what prediction must repeat: the feature standardization
(mean and std of the training split), the class labels behind the class indices
(classification) or the target scaling (regression).  It is saved as a JSON
sidecar next to the model (``model.npz.preprocess.json``) because the model file
itself only holds the network.

Every problem with the user's data raises ``DataError`` with a message that says
what is wrong and how to fix it.
"""
import csv
import json
import os
import zipfile
from collections import Counter

import numpy as np

#: at most this many distinct integer values make a numeric target "classification"
MAX_INFERRED_CLASSES = 20
SIDECAR_SUFFIX = ".preprocess.json"
SIDECAR_FORMAT = "fastbp-preprocess"
CSV_EXTENSIONS = (".csv", ".tsv", ".txt")
#: cells that mean "no value" (compared case-insensitively after stripping); ``nan`` also parses
#: as a float and is then refused as NaN
NA_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-"})


class DataError(ValueError):
    """Bad user data: the message names the file and says how to fix it."""


class Table:
    """Features ``X`` (float64, N×F), raw targets ``y`` (or None) and the column names.

    ``named``: the feature names come from a CSV header; arrays (.npz, .npy) have none,
    and their columns are called ``x0, x1, ...`` by position.
    """

    def __init__(self, X, y, feature_names, target_name=None, named=True):
        self.X = X
        self.y = y
        self.feature_names = list(feature_names)
        self.target_name = target_name
        self.named = named

    def __len__(self):
        return self.X.shape[0]


# ----------------------------------------------------------------------------- reading
def load_table(path, target=None, targets_path=None, require_target=True, features=None):
    """Read a training or prediction table from ``path`` (see the module docstring).

    Args:
        target: CSV target column, by name or 0-based index (default: the last column).
        targets_path: the ``.npy`` file with the targets when ``path`` is a ``.npy`` file.
        require_target: False for prediction: a CSV is then all features (unless
            ``target`` names a column to drop) and an ``.npz`` needs no ``y``.
        features: CSV feature columns to read, by name and in this order (prediction);
            every other column is ignored.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in CSV_EXTENSIONS + (".npz", ".npy"):
        raise DataError(f"{path}: unknown file type {ext or '(no extension)'!r}; use .csv (with a header "
                        "row), .npz (arrays X and y) or .npy (X, with --targets y.npy)")
    _check_readable(path)
    if targets_path is not None and ext != ".npy":
        raise DataError(f"--targets is only for a .npy feature file; {path} is {ext} "
                        "(a .csv names its target column with --target, an .npz holds y itself)")
    if target is not None and ext not in CSV_EXTENSIONS:
        raise DataError(f"--target selects a CSV column; {path} is {ext}, whose targets are the array y")
    if ext in CSV_EXTENSIONS:
        return _load_csv(path, target, require_target, features)
    if ext == ".npz":
        return _load_npz(path, require_target)
    return _load_npy(path, targets_path, require_target)


def _check_readable(path):
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file; check the path")
    if os.path.isdir(path):
        raise DataError(f"{path} is a directory; give a data file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: permission denied; make the file readable")


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_na(text):
    """A missing-value marker such as ``NA``, ``null``, ``?`` or an empty cell (``text`` is stripped)."""
    return text.lower() in NA_MARKERS


def _is_numeric_column(stripped):
    """Every cell a number or a missing-value marker, and at least one a number that is not NaN."""
    found = False
    for cell in stripped:
        if _is_number(cell):
            found = found or not _is_na(cell)
        elif not _is_na(cell):
            return False
    return found


def _header_is_data(header, rows, target, require_target, features):
    """Whether the first line is a data row rather than column names.

    It is when every feature cell of it is a number, and the target cell (if any) does not
    tell otherwise: a text name above a numeric target column (``2019,2020,sales``) or above
    labels it is not one of (``0,1,2,label``, as pandas writes unnamed columns) is a header,
    while a label that recurs below it (``5.1,3.5,1.4,0.2,setosa``) makes the line data.
    """
    if target is not None and target in header:
        return False                               # --target named one of its cells
    if features is not None and set(features) <= set(header):
        return False                               # it holds the model's column names
    t_index = None
    if target is not None:
        try:
            t_index = int(target)
        except ValueError:
            t_index = None
        if t_index is not None and -len(header) <= t_index < len(header):
            t_index %= len(header)
        else:
            t_index = None
    elif require_target:
        t_index = len(header) - 1
    if not all(_is_number(cell) for i, cell in enumerate(header) if i != t_index):
        return False
    if t_index is None or _is_number(header[t_index]):
        return True
    column = [row[t_index].strip() for row in rows]
    if _is_numeric_column(column):
        return False
    return header[t_index] in column


def _sniff_delimiter(first_line):
    if "," in first_line:
        return ","
    for delim in ("\t", ";"):
        if delim in first_line:
            return delim
    return ","


def _load_csv(path, target, require_target, features=None):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = f.readline()
            f.seek(0)
            reader = csv.reader(f, delimiter=_sniff_delimiter(first), strict=True)
            rows = []
            header = None
            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue                        # blank lines carry nothing
                if header is None:
                    header = [cell.strip() for cell in row]
                    continue
                if len(row) != len(header):
                    raise DataError(f"{path}, line {reader.line_num}: {len(row)} fields but the header has "
                                    f"{len(header)}; every row needs one value per column")
                rows.append(row)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a UTF-8 text file ({exc.reason} at byte {exc.start}); "
                        "save the CSV as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc}); check quoting on that line") from None
    if header is None:
        raise DataError(f"{path} is empty; a CSV needs a header row and at least one data row")
    if _header_is_data(header, rows, target, require_target, features):
        shown = ", ".join(header[:4]) + (", ..." if len(header) > 4 else "")
        raise DataError(f"{path}: the first line ({shown}) looks like data; "
                        "add a header row with column names")
    if any(not name for name in header):
        raise DataError(f"{path}: column {header.index('') + 1} of the header has no name; name every column")
    dupes = sorted(name for name, count in Counter(header).items() if count > 1)
    if dupes:
        raise DataError(f"{path}: duplicate column name(s) {', '.join(map(repr, dupes))}; make them unique")
    if not rows:
        raise DataError(f"{path} has a header but no data rows")
    columns = list(zip(*rows))

    t_index = None
    if target is not None:
        t_index = _column_index(path, header, target)
    elif require_target:
        t_index = len(header) - 1
    if require_target and len(header) < 2:
        raise DataError(f"{path} has a single column; it needs at least one feature column "
                        "and a target column")

    if features is not None:
        position = {name: i for i, name in enumerate(header)}      # names are unique by now
        missing = [name for name in features if name not in position]
        if missing:
            shown = ", ".join(map(repr, missing[:8])) + (", ..." if len(missing) > 8 else "")
            raise DataError(f"{path} lacks the feature column(s) {shown} that the model was trained on; "
                            "use the training file's column names in the header")
        feature_idx = [position[name] for name in features]
    else:
        feature_idx = [i for i in range(len(header)) if i != t_index]
    if not feature_idx:
        raise DataError(f"{path} has no feature columns besides the target {header[t_index]!r}")
    X = np.empty((len(rows), len(feature_idx)), dtype=np.float64)
    for j, i in enumerate(feature_idx):
        X[:, j] = _numeric_column(path, header[i], columns[i], is_target=False)
    y = None
    if t_index is not None:
        y = _target_column(path, header[t_index], columns[t_index])
    return Table(X, y, [header[i] for i in feature_idx], header[t_index] if t_index is not None else None)


def _column_index(path, header, target):
    if target in header:
        return header.index(target)
    try:
        index = int(target)
    except ValueError:
        index = None
    if index is not None and -len(header) <= index < len(header):
        return index % len(header)
    shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
    raise DataError(f"{path}: no column {target!r} for --target; the columns are: {shown}")


def _numeric_column(path, name, cells, is_target):
    """Parse one column as float64, or say which cell is not a number."""
    stripped = [cell.strip() for cell in cells]
    try:
        values = np.array(stripped).astype(np.float64)
    except ValueError:
        values = np.empty(len(stripped), dtype=np.float64)
        for row, cell in enumerate(stripped, start=1):
            try:
                values[row - 1] = float(cell)
            except ValueError:
                if _is_na(cell):
                    what = "missing value" + (f" ({cell!r})" if cell else "")
                    fix = "fill in or drop rows with missing values"
                else:
                    what = f"{cell!r} is not a number"
                    fix = ("targets must be all numbers or all labels" if is_target else
                           "features must be numeric: encode categories as numbers (e.g. one-hot) "
                           "or drop the column")
                raise DataError(f"{path}: column {name!r}, data row {row}: {what}; {fix}") from None
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad)) + 1
        raise DataError(f"{path}: column {name!r}, data row {row}: {cells[row - 1].strip()!r} (NaN/Inf) "
                        "is not usable; fill in or drop rows with missing values")
    return values


def _target_column(path, name, cells):
    """Numbers as float64 when every cell is one; otherwise the stripped strings (class labels).

    Missing-value markers (``NA``, ``null``, ``?``, ...) among numbers are missing values, not labels.
    """
    stripped = [cell.strip() for cell in cells]
    if _is_numeric_column(stripped) or all(_is_number(cell) for cell in stripped):
        return _numeric_column(path, name, cells, is_target=True)
    if any(not cell for cell in stripped):
        row = stripped.index("") + 1
        raise DataError(f"{path}: target column {name!r}, data row {row}: missing value; "
                        "every sample needs a target")
    return np.array(stripped)


def _load_array(path, archive=None, key=None):
    where = f"{path}" if key is None else f"{path}[{key!r}]"
    try:
        arr = archive[key] if archive is not None else np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(f"{where} holds Python objects, which fastbp does not unpickle; "
                            "save plain numeric (or string label) arrays") from None
        raise DataError(f"{where} is not a valid .npy array ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{where} cannot be read as a numpy array ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path} is an .npz archive; rename it to .npz or save X with numpy.save")
    return arr


def _features(where, X):
    if X.dtype.kind not in "biuf":
        raise DataError(f"{where} must hold numbers, got dtype {X.dtype}; encode categories as numbers")
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise DataError(f"{where} must be a 2-D (samples, features) array, got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{where} is empty (shape {X.shape})")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        row = int(np.argmax(~np.isfinite(X).all(axis=1)))
        raise DataError(f"{where} has NaN or Inf values (first in row {row}); fill in or drop them")
    return X


def _targets(where, y, n_rows):
    if y.dtype.kind not in "biufU":
        raise DataError(f"{where} must hold numbers or strings, got dtype {y.dtype}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2) or y.shape[0] != n_rows:
        raise DataError(f"{where} has shape {y.shape}, but X has {n_rows} rows; give one target per row")
    if y.dtype.kind in "biuf":
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise DataError(f"{where} has NaN or Inf values; every sample needs a finite target")
    elif y.ndim == 1:
        # text read the way a CSV's target column is: numbers with missing-value markers
        # ("1", "2", "NA") are numbers with a missing value, not three class labels
        y = _target_column(where, "y", y.tolist())
    else:
        raise DataError(f"{where} holds text of shape {y.shape}; string targets are one class label per "
                        "row (shape (N,))")
    return y


def _load_npz(path, require_target):
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a valid .npz archive ({exc})") from None
    if not hasattr(archive, "files"):
        raise DataError(f"{path} holds a single array; use the .npy extension for it (with --targets y.npy)")
    with archive:
        names = archive.files
        if "X" not in names:
            raise DataError(f"{path} has no array 'X' (found: {', '.join(names) or 'none'}); "
                            "save it with numpy.savez(path, X=features, y=targets)")
        X = _features(f"{path}['X']", _load_array(path, archive, "X"))
        y = None
        if "y" in names:
            y = _targets(f"{path}['y']", _load_array(path, archive, "y"), X.shape[0])
        elif require_target:
            raise DataError(f"{path} has no array 'y' (found: {', '.join(names)}); "
                            "save it with numpy.savez(path, X=features, y=targets)")
    return Table(X, y, [f"x{i}" for i in range(X.shape[1])], "y", named=False)


def _load_npy(path, targets_path, require_target):
    if require_target and targets_path is None:
        raise DataError(f"{path} holds only the features; give the targets too: --targets y.npy")
    X = _features(path, _load_array(path))
    y = None
    if targets_path is not None:
        targets_path = os.fspath(targets_path)
        if not targets_path.lower().endswith(".npy"):
            raise DataError(f"--targets must be a .npy file, got {targets_path}")
        _check_readable(targets_path)
        y = _targets(targets_path, _load_array(targets_path), X.shape[0])
    return Table(X, y, [f"x{i}" for i in range(X.shape[1])], "y", named=False)


# --------------------------------------------------------------------------- the task
def infer_task(y):
    """``"classification"`` for string targets or integer-valued ones with few distinct values."""
    if y.dtype.kind == "U":
        return "classification"
    if y.ndim == 1 and np.all(y == np.round(y)) and len(np.unique(y)) <= MAX_INFERRED_CLASSES:
        return "classification"
    return "regression"


def _mean_std(A):
    """Per-column mean and std of ``A`` (N×F), finite for finite input; constant columns get std 1.

    A column is constant when all its values are equal (not when its computed std is 0: rounding
    gives 0.1, 0.1, ... a std of ~1e-16), and its mean is then that value, so it standardizes to 0.
    """
    shape = A.shape[1:]
    A = A.reshape(len(A), -1)
    const = (A == A[:1]).all(axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = A.mean(axis=0)
        std = A.std(axis=0)
    big = ~(np.isfinite(mean) & np.isfinite(std)) & np.isfinite(A).all(axis=0)
    if big.any():                                  # squares (or sums) past 1.8e308: scale to |x| <= 1
        scale = np.abs(A[:, big]).max(axis=0)
        scaled = A[:, big] / scale
        mean[big] = scaled.mean(axis=0) * scale
        std[big] = scaled.std(axis=0) * scale
    mean[const] = A[0, const]
    std[const] = 1.0                               # constant columns pass through centred
    return mean.reshape(shape), std.reshape(shape)


def _json_label(value):
    """A class label as JSON: ints stay ints (3.0 → 3), strings stay strings."""
    if isinstance(value, str):
        return value
    value = float(value)
    return int(value) if value == round(value) else value


class Preprocessing:
    """What training learned about the data and prediction must repeat.

    Attributes:
        task: ``"classification"`` or ``"regression"``.
        mean, std: per-feature standardization from the training split (std 0 → 1).
        classes: the original class labels; class index i means ``classes[i]``.
        y_mean, y_std: regression target standardization (the model predicts standardized values).
        feature_names, target_name: column names, to select columns of a prediction CSV.
        named_features: whether ``feature_names`` came from a CSV header.  When the model was
            trained on arrays (``x0, x1, ...``), a prediction CSV's columns are taken in order.
        loss: the training loss name (``"bce"`` changes how outputs become probabilities).
    """

    def __init__(self, task, mean, std, feature_names, target_name=None, classes=None,
                 y_mean=None, y_std=None, loss=None, named_features=True):
        self.task = task
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self.feature_names = list(feature_names)
        self.target_name = target_name
        self.classes = None if classes is None else list(classes)
        self.y_mean = None if y_mean is None else np.asarray(y_mean, dtype=np.float64)
        self.y_std = None if y_std is None else np.asarray(y_std, dtype=np.float64)
        self.loss = loss
        self.named_features = named_features

    @classmethod
    def fit(cls, X, feature_names, target_name=None, task="classification", y=None, loss=None,
            named_features=True):
        """Standardization from the training features ``X`` (and regression targets ``y``)."""
        mean, std = _mean_std(X)
        y_mean = y_std = None
        if task == "regression" and y is not None:
            y_mean, y_std = _mean_std(np.asarray(y, dtype=np.float64))
        return cls(task, mean, std, feature_names, target_name, y_mean=y_mean, y_std=y_std, loss=loss,
                   named_features=named_features)

    def transform(self, X, dtype=np.float64):
        with np.errstate(over="ignore", invalid="ignore"):
            Z = (X - self.mean) / self.std
            if not np.isfinite(Z).all():           # X - mean overflowed (values near ±1.8e308)
                Z = X / self.std - self.mean / self.std
            Z = Z.astype(dtype)
        bad = ~np.isfinite(Z)
        if bad.any() and np.isfinite(X).all():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            name = self.feature_names[col] if col < len(self.feature_names) else f"x{col}"
            raise DataError(f"column {name!r}, data row {row + 1}: {float(X[row, col])!r} is too far outside the "
                            f"range of the training data (it standardizes beyond {np.dtype(dtype).name}); "
                            "check the value and its units")
        return Z

    def encode_labels(self, y):
        """Class labels → indices 0..C-1 (sets ``classes`` on first use)."""
        if self.classes is None:
            self.classes = [_json_label(v) for v in np.unique(y)]
        lookup = {label: i for i, label in enumerate(self.classes)}
        try:
            return np.array([lookup[_json_label(v)] for v in y], dtype=np.int64)
        except KeyError as exc:
            raise DataError(f"unknown class label {exc.args[0]!r}") from None

    def decode_labels(self, indices):
        labels = [self.classes[int(i)] for i in indices]
        if all(isinstance(v, str) for v in self.classes):
            return np.array(labels, dtype=str)
        return np.array(labels)

    def scale_targets(self, y):
        return (y - self.y_mean) / self.y_std

    def unscale_targets(self, y):
        return y * self.y_std + self.y_mean

    # -------------------------------------------------------------- persistence
    def to_dict(self):
        def vec(a):
            return None if a is None else [float(v) for v in np.ravel(a)]
        return {"format": SIDECAR_FORMAT, "version": 1, "task": self.task, "loss": self.loss,
                "feature_names": self.feature_names, "named_features": self.named_features,
                "target_name": self.target_name,
                "mean": vec(self.mean), "std": vec(self.std), "classes": self.classes,
                "y_mean": vec(self.y_mean), "y_std": vec(self.y_std)}

    @classmethod
    def from_dict(cls, d, where="preprocessing"):
        if not isinstance(d, dict) or d.get("format") != SIDECAR_FORMAT:
            raise DataError(f"{where} is not a fastbp preprocessing file")
        try:
            prep = cls(d["task"], d["mean"], d["std"], d["feature_names"], d.get("target_name"),
                       d.get("classes"), d.get("y_mean"), d.get("y_std"), d.get("loss"),
                       d.get("named_features", True))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where} is damaged ({exc!r}); retrain and save the model again") from None
        n = len(prep.feature_names)
        if not isinstance(prep.named_features, bool):
            raise DataError(f"{where} is damaged ('named_features' must be true or false); retrain and save "
                            "the model again")
        if prep.task not in ("classification", "regression") or prep.mean.shape != (n,) \
                or prep.std.shape != (n,) or not np.isfinite(prep.mean).all() or not (prep.std > 0).all() \
                or not np.isfinite(prep.std).all():
            raise DataError(f"{where} is damaged (task must be classification or regression, and mean and std "
                            f"one finite number per feature, std > 0: {n} features); retrain and save the model "
                            "again")
        return prep

    def save(self, path):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=1)

    @classmethod
    def load(cls, path):
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path} cannot be read ({exc}); retrain and save the model again") from None
        return cls.from_dict(d, path)


def model_path(path):
    """The path ``model.save`` writes to: numpy appends ``.npz`` when it is missing."""
    path = os.fspath(path)
    return path if path.endswith(".npz") else path + ".npz"


def sidecar_path(model_file):
    """``model.npz`` → ``model.npz.preprocess.json``."""
    return model_path(model_file) + SIDECAR_SUFFIX
