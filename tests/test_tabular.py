"""fastbp.tabular: reading user tables, inferring the task, and the saved preprocessing."""
import json

import numpy as np
import pytest

from fastbp.tabular import DataError, Preprocessing, infer_task, load_table, model_path, sidecar_path


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ------------------------------------------------------------------------- CSV
def test_csv_numeric_features_and_string_target(tmp_path):
    path = write(tmp_path, "d.csv", "a,b,label\n1,2.5,cat\n-3, 4e1 ,dog\n\n5,6,cat\n")
    t = load_table(path)
    np.testing.assert_array_equal(t.X, [[1, 2.5], [-3, 40], [5, 6]])
    assert t.X.dtype == np.float64
    assert list(t.y) == ["cat", "dog", "cat"]
    assert t.feature_names == ["a", "b"] and t.target_name == "label" and t.named


def test_csv_target_by_name_or_index_and_numeric_target(tmp_path):
    path = write(tmp_path, "d.csv", "price,a,b\n1.5,1,2\n2.5,3,4\n")
    by_name = load_table(path, target="price")
    by_index = load_table(path, target="0")
    for t in (by_name, by_index):
        np.testing.assert_array_equal(t.y, [1.5, 2.5])
        np.testing.assert_array_equal(t.X, [[1, 2], [3, 4]])
        assert t.feature_names == ["a", "b"]


def test_csv_quoted_fields_bom_and_semicolons(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeffx;y;name\n1;2;\"a;b\"\n3;4;c\n".encode("utf-8"))
    t = load_table(str(path))
    assert t.feature_names == ["x", "y"]
    assert list(t.y) == ["a;b", "c"]


def test_csv_for_prediction_selects_named_features(tmp_path):
    path = write(tmp_path, "d.csv", "label,b,extra,a\ncat,2,x,1\ndog,4,y,3\n")
    t = load_table(path, require_target=False, features=["a", "b"])
    np.testing.assert_array_equal(t.X, [[1, 2], [3, 4]])
    with pytest.raises(DataError, match="lacks the feature column"):
        load_table(path, require_target=False, features=["a", "zzz"])


@pytest.mark.parametrize("text, match", [
    ("", "is empty"),
    ("a,b,y\n", "no data rows"),
    ("1,2,3\n4,5,6\n", "looks like data; add a header row"),
    ("a,b,y\n1,2\n", "line 2: 2 fields but the header has 3"),
    ("a,b,y\n1,\"2,3\n", "malformed CSV"),
    ("a,b,y\n1,x,0\n", "column 'b', data row 1: 'x' is not a number"),
    ("a,b,y\n1,,0\n", "column 'b', data row 1: missing value"),
    ("a,b,y\n1,nan,0\n", "NaN/Inf"),
    ("a,a,y\n1,2,0\n", "duplicate column"),
    ("a,,y\n1,2,0\n", "has no name"),
    ("y\n1\n", "single column"),
    ("a,b,y\n1,2,\n3,4,cat\n", "target column 'y', data row 1: missing value"),
])
def test_csv_errors(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        load_table(write(tmp_path, "d.csv", text))


@pytest.mark.parametrize("marker", ["NA", "N/A", "null", "NULL", "None", "?", "-", ""])
def test_csv_na_marker_in_numeric_target_is_a_missing_value(tmp_path, marker):
    # one 'NA' among numbers used to turn the target into class labels (one class per price)
    path = write(tmp_path, "d.csv", f"x,price\n1,1.5\n2,{marker}\n3,2.75\n")
    with pytest.raises(DataError, match=r"column 'price', data row 2: missing value"):
        load_table(path)
    path = write(tmp_path, "f.csv", f"a,b,y\n1,{marker},0\n")        # features say the same
    with pytest.raises(DataError, match=r"column 'b', data row 1: missing value"):
        load_table(path)


def test_csv_labels_that_look_like_na_markers_stay_labels(tmp_path):
    t = load_table(write(tmp_path, "d.csv", "a,severity\n1,None\n2,mild\n3,-\n"))
    assert list(t.y) == ["None", "mild", "-"] and infer_task(t.y) == "classification"


def test_csv_headerless_file_with_text_labels_is_refused(tmp_path):
    # only the features' cells are numbers: the first sample was silently taken as the header
    text = "5.1,3.5,1.4,0.2,setosa\n4.9,3.0,1.4,0.2,setosa\n7.0,3.2,4.7,1.4,versicolor\n"
    with pytest.raises(DataError, match=r"first line \(5.1, 3.5, 1.4, 0.2, ...\) looks like data"):
        load_table(write(tmp_path, "d.csv", text))
    with pytest.raises(DataError, match="looks like data"):
        load_table(write(tmp_path, "e.csv", "setosa,5.1,3.5\nsetosa,4.9,3.0\n"), target="0")
    # numeric column names are still a header above a numeric target or labels not among them
    t = load_table(write(tmp_path, "f.csv", "2019,2020,sales\n1,2,3.5\n4,5,6.5\n"))
    assert t.feature_names == ["2019", "2020"] and len(t) == 2
    t = load_table(write(tmp_path, "g.csv", "0,1,label\n1,2,cat\n4,5,dog\n"))
    assert t.feature_names == ["0", "1"] and list(t.y) == ["cat", "dog"]
    t = load_table(write(tmp_path, "h.csv", "0,1,label\n1,2,cat\n"), target="label")
    assert t.feature_names == ["0", "1"]


def test_csv_wide_file(tmp_path):
    # the name lookups are dicts now (they were O(columns²): 40,000 columns took 35 s to load for
    # training and 63 s for predict, 0.5 s each now; timed by hand, not here)
    n = 3_000
    names = [f"f{i}" for i in range(n)]
    row = ",".join(map(str, range(n)))
    path = write(tmp_path, "w.csv", ",".join(names) + "\n" + (row + "\n") * 3)
    t = load_table(path)
    assert t.X.shape == (3, n - 1) and t.target_name == f"f{n - 1}"
    t = load_table(path, require_target=False, features=names[::-1])
    assert t.X.shape == (3, n) and t.feature_names[0] == f"f{n - 1}"
    np.testing.assert_array_equal(t.X[0], np.arange(n)[::-1])
    with pytest.raises(DataError, match="duplicate column name"):
        load_table(write(tmp_path, "d.csv", ",".join(names + ["f7"]) + "\n" + (row + ",1\n") * 2))


def test_csv_missing_target_column_lists_columns(tmp_path):
    path = write(tmp_path, "d.csv", "a,b,y\n1,2,0\n")
    with pytest.raises(DataError, match=r"no column 'nope' for --target; the columns are: a, b, y"):
        load_table(path, target="nope")


def test_not_utf8(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="not a UTF-8"):
        load_table(str(path))


def test_missing_file_directory_and_unknown_extension(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_table(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="unknown file type"):
        load_table(write(tmp_path, "d.xlsx", "x"))
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(DataError, match="is a directory"):
        load_table(str(folder))


# ------------------------------------------------------------------- npz / npy
def test_npz(tmp_path):
    path = str(tmp_path / "d.npz")
    np.savez(path, X=np.arange(6).reshape(3, 2), y=np.array([3, 5, 7]))
    t = load_table(path)
    np.testing.assert_array_equal(t.X, [[0, 1], [2, 3], [4, 5]])
    np.testing.assert_array_equal(t.y, [3, 5, 7])
    assert t.feature_names == ["x0", "x1"] and not t.named       # arrays have no column names
    np.savez(path, X=np.ones((3, 2)))
    assert load_table(path, require_target=False).y is None
    with pytest.raises(DataError, match="no array 'y'"):
        load_table(path)
    np.savez(path, features=np.ones((3, 2)))
    with pytest.raises(DataError, match="no array 'X'"):
        load_table(path)
    np.savez(path, X=np.array([[1, None]], dtype=object), y=np.array([1]))
    with pytest.raises(DataError, match="Python objects"):
        load_table(path)


def test_array_text_targets_are_read_like_a_csv_target_column(tmp_path):
    """Text targets in an .npz or .npy follow the CSV rules: numbers with a missing-value marker
    are numbers with a missing value (they were taken as one class label per value), an empty
    label is a missing target, and other text stays class labels."""
    path = str(tmp_path / "d.npz")
    X = np.ones((3, 2))
    np.savez(path, X=X, y=np.array(["1.5", "NA", "2.5"]))
    with pytest.raises(DataError, match=r"d.npz\['y'\]: column 'y', data row 2: missing value \('NA'\)"):
        load_table(path)
    np.savez(path, X=X, y=np.array(["1.5", " 2", "2.5"]))
    t = load_table(path)
    assert t.y.dtype == np.float64 and list(t.y) == [1.5, 2.0, 2.5]
    np.savez(path, X=X, y=np.array(["cat", "", "dog"]))
    with pytest.raises(DataError, match="data row 2: missing value; every sample needs a target"):
        load_table(path)
    np.savez(path, X=X, y=np.array(["None", " mild", "-"]))
    assert list(load_table(path).y) == ["None", "mild", "-"]
    np.savez(path, X=X, y=np.array([["a", "b"]] * 3))
    with pytest.raises(DataError, match=r"text of shape \(3, 2\); string targets are one class label per row"):
        load_table(path)


def test_npy_pair(tmp_path):
    X, y = str(tmp_path / "X.npy"), str(tmp_path / "y.npy")
    np.save(X, np.ones((4, 3), dtype=np.float32))
    np.save(y, np.array([["a"], ["b"], ["a"], ["b"]]))
    t = load_table(X, targets_path=y)
    assert t.X.shape == (4, 3) and list(t.y) == ["a", "b", "a", "b"]
    with pytest.raises(DataError, match="--targets y.npy"):
        load_table(X)
    np.save(y, np.array([1, 2]))
    with pytest.raises(DataError, match="X has 4 rows"):
        load_table(X, targets_path=y)
    np.save(X, np.array([[1.0, np.inf]]))
    with pytest.raises(DataError, match="NaN or Inf"):
        load_table(X, require_target=False)
    with pytest.raises(DataError, match="only for a .npy"):
        load_table(write(tmp_path, "d.csv", "a,y\n1,2\n"), targets_path=y)


# ---------------------------------------------------------------- task, labels
def test_infer_task():
    assert infer_task(np.array(["a", "b"])) == "classification"
    assert infer_task(np.array([3.0, 5.0, 7.0, 3.0])) == "classification"
    assert infer_task(np.array([0.5, 1.0, 2.0])) == "regression"
    assert infer_task(np.arange(100.0)) == "regression"          # too many distinct values


def test_labels_and_standardization_round_trip(tmp_path):
    X = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    prep = Preprocessing.fit(X, ["a", "b"], "y")
    codes = prep.encode_labels(np.array([7.0, 3.0, 5.0]))
    np.testing.assert_array_equal(codes, [2, 0, 1])
    assert prep.classes == [3, 5, 7] and all(isinstance(c, int) for c in prep.classes)
    Z = prep.transform(X, np.float32)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z[:, 0], [-1.2247449, 0, 1.2247449], rtol=1e-6)
    np.testing.assert_array_equal(Z[:, 1], 0)                    # constant column: centred, std 1
    path = sidecar_path(str(tmp_path / "m"))
    assert path.endswith("m.npz.preprocess.json")
    prep.save(path)
    again = Preprocessing.load(path)
    np.testing.assert_array_equal(again.mean, prep.mean)        # floats survive JSON exactly
    np.testing.assert_array_equal(again.std, prep.std)
    assert again.classes == [3, 5, 7]
    np.testing.assert_array_equal(again.decode_labels([2, 0]), [7, 3])
    assert again.named_features
    unnamed = Preprocessing.fit(X, ["x0", "x1"], "y", named_features=False)
    unnamed.save(path)
    assert Preprocessing.load(path).named_features is False
    d = unnamed.to_dict()
    del d["named_features"]                  # a sidecar written before the key existed
    assert Preprocessing.from_dict(d).named_features is True


def test_standardization_constant_and_huge_columns():
    # 0.1 in every row has a computed std of ~1.7e-16, not 0: it was not taken as constant, and
    # 0.1000001 then standardized to ~6e8; ±1e160 squared overflowed to std inf (column zeroed)
    X = np.array([[0.1, 1e160, 1.7e308, 1.0], [0.1, -1e160, -1.7e308, 2.0], [0.1, 1e160, 1.7e308, 3.0]])
    prep = Preprocessing.fit(X, ["a", "b", "c", "d"], "y", task="regression", y=np.array([[1e300], [-1e300], [1e300]]))
    assert prep.mean[0] == 0.1 and prep.std[0] == 1.0
    assert np.isfinite(prep.std).all() and np.isfinite(prep.mean).all()
    np.testing.assert_allclose(prep.std[1], 1e160 * np.sqrt(8) / 3)
    Z = prep.transform(X)
    np.testing.assert_array_equal(Z[:, 0], 0)
    np.testing.assert_allclose(Z[:, 1], [0.5 ** 0.5, -2 ** 0.5, 0.5 ** 0.5])
    np.testing.assert_allclose(Z[:, 2], Z[:, 1])            # X - mean overflows here
    np.testing.assert_allclose(prep.transform(np.array([[0.1000001, 0, 0, 2.0]]))[0, 0], 1e-7)
    assert np.isfinite(prep.y_std).all() and np.isfinite(prep.scale_targets(np.array([[1e300]]))).all()
    with pytest.raises(DataError, match=r"column 'a', data row 2: 1e\+200 is too far outside"):
        prep.transform(np.array([[0.1, 0, 0, 2.0], [1e200, 0, 0, 2.0]]), np.float32)


def test_regression_targets_scale_and_unscale():
    y = np.array([[10.0], [20.0], [30.0]])
    prep = Preprocessing.fit(np.ones((3, 1)), ["a"], "y", task="regression", y=y)
    np.testing.assert_allclose(prep.unscale_targets(prep.scale_targets(y)), y)
    assert abs(prep.scale_targets(y).mean()) < 1e-12


def test_damaged_sidecar(tmp_path):
    path = write(tmp_path, "m.npz.preprocess.json", "{not json")
    with pytest.raises(DataError, match="cannot be read"):
        Preprocessing.load(path)
    path = write(tmp_path, "m.npz.preprocess.json", '{"format": "other"}')
    with pytest.raises(DataError, match="not a fastbp preprocessing file"):
        Preprocessing.load(path)
    good = Preprocessing.fit(np.array([[1.0, 5.0, 0.0], [3.0, 6.0, 1.0]]), ["a", "b", "c"], "y").to_dict()
    # a hand-edited file whose mean had 2 of 3 entries failed later with numpy's broadcast message
    for change in ({"mean": [0.0, 1.0]}, {"std": [1.0, 0.0, 1.0]}, {"std": [1.0, 1.0, float("inf")]},
                   {"mean": [[0.0, 1.0, 2.0]]}, {"task": "ranking"}):
        path = tmp_path / "bad.npz.preprocess.json"
        path.write_text(json.dumps(dict(good, **change)))
        with pytest.raises(DataError, match="is damaged .*one finite number per feature"):
            Preprocessing.load(str(path))
    path.write_text(json.dumps(dict(good, named_features="yes")))
    with pytest.raises(DataError, match="'named_features' must be true or false"):
        Preprocessing.load(str(path))


def test_model_path():
    assert model_path("m") == "m.npz" and model_path("m.npz") == "m.npz"
