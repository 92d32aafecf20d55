"""save/load: exact round trips, architecture as JSON, never unpickling."""
import json

import numpy as np
import pytest

import fastbp as fb


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_exact_for_every_layer_type(tmp_path, dtype):
    model = fb.Sequential(fb.Linear(5, 8, init="xavier_normal"), fb.BatchNorm1d(8, momentum=0.2), fb.GELU("tanh"),
                          fb.Dropout(0.1), fb.Linear(8, 6, bias=False), fb.LeakyReLU(0.2), fb.Linear(6, 3),
                          fb.ELU(0.7), fb.Softplus(), dtype=dtype, seed=1)
    model.forward(np.random.default_rng(0).standard_normal((9, 5)).astype(dtype))   # move running stats
    model.save(tmp_path / "m")                                                        # numpy adds .npz
    loaded = fb.load(tmp_path / "m")
    assert loaded.dtype == model.dtype
    assert [layer.config() for layer in loaded.layers] == [layer.config() for layer in model.layers]
    np.testing.assert_array_equal(loaded.parameters().params, model.parameters().params)
    np.testing.assert_array_equal(loaded.state.params, model.state.params)
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(dtype)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_file_holds_json_and_plain_arrays(tmp_path):
    fb.MLP([3, 4, 2], seed=0).save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert set(f.files) == {"format", "version", "architecture", "params", "state"}
        config = json.loads(str(f["architecture"]))
    assert config["dtype"] == "float32" and config["layers"][0]["type"] == "Linear"


def test_newer_format_and_unknown_layers_are_rejected(tmp_path):
    model = fb.MLP([3, 4, 2], seed=0)
    cfg = model.config()
    np.savez(tmp_path / "new.npz", format=np.array("fastbp-model"), version=np.array(99),
             architecture=np.array(json.dumps(cfg)), params=model.parameters().params)
    with pytest.raises(ValueError, match="newer fastbp"):
        fb.load(tmp_path / "new.npz")
    cfg["layers"][0]["type"] = "Conv2d"
    np.savez(tmp_path / "odd.npz", format=np.array("fastbp-model"), version=np.array(1),
             architecture=np.array(json.dumps(cfg)), params=model.parameters().params)
    with pytest.raises(ValueError, match="unknown layer type 'Conv2d'"):
        fb.load(tmp_path / "odd.npz")
    np.savez(tmp_path / "short.npz", format=np.array("fastbp-model"), version=np.array(1),
             architecture=np.array(json.dumps(model.config())), params=np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="do not fit the architecture"):
        fb.load(tmp_path / "short.npz")
