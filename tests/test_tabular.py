"""fastbp.tabular: reading user tables, inferring the task, and the saved preprocessing."""
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
    assert t.feature_names == ["a", "b"] and t.target_name == "label"


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


def test_model_path():
    assert model_path("m") == "m.npz" and model_path("m.npz") == "m.npz"
