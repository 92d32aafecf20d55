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
        assert set(f.files) == {"format", "version", "architecture", "params", "state", "settings",
                                "dropout_seed", "step", "rng"}
        assert f["dropout_seed"].dtype == np.int64 and f["step"].shape == () and f["rng"].dtype.kind == "U"
        config = json.loads(str(f["architecture"]))
    assert config["dtype"] == "float32" and config["layers"][0]["type"] == "Linear" and config["class"] == "MLP"


def test_class_seed_and_mode_round_trip(tmp_path):
    """An MLP came back as a Sequential, in training mode, with seed 0 whatever it was built with."""
    model = fb.MLP([3, 4, 2], dropout=0.5, seed=7).eval()
    model.save(tmp_path / "m.npz")
    loaded = fb.load(tmp_path / "m.npz")
    assert type(loaded) is fb.MLP and repr(loaded).startswith("MLP(")
    assert loaded.seed == 7 and not loaded.training
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))      # eval: dropout off in both
    plain = fb.Sequential(fb.Linear(3, 2), seed=np.random.default_rng(1))    # a seed JSON cannot hold
    plain.save(tmp_path / "p.npz")
    loaded = fb.load(tmp_path / "p.npz")
    assert type(loaded) is fb.Sequential and loaded.seed is None and loaded.training

    class Custom(fb.Sequential):
        pass
    Custom(fb.Linear(3, 2), seed=3).save(tmp_path / "c.npz")
    assert type(fb.load(tmp_path / "c.npz")) is fb.Sequential                 # unknown class: Sequential


def test_from_layers_checks_its_layers():
    model = fb.MLP.from_layers([fb.Linear(3, 4), fb.ReLU(), fb.Linear(4, 2)], seed=0)
    assert type(model) is fb.MLP and model.in_features == 3 and model.out_features == 2
    with pytest.raises(TypeError, match="layers must be a list or tuple of fastbp layers, got Linear"):
        fb.MLP.from_layers(fb.Linear(3, 4))
    with pytest.raises(TypeError, match=r"layers\[1\] must be a fastbp layer, got str"):
        fb.Sequential.from_layers([fb.Linear(3, 4), "relu"])


def test_file_without_class_and_settings_loads_as_before(tmp_path):
    """Files written before the class name and settings were saved."""
    fb.MLP([3, 4, 2], seed=5).eval().save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        contents = {k: f[k] for k in f.files if k != "settings"}
    config = json.loads(str(contents["architecture"]))
    del config["class"]
    contents["architecture"] = np.array(json.dumps(config))
    np.savez(tmp_path / "old.npz", **contents)
    loaded = fb.load(tmp_path / "old.npz")
    assert type(loaded) is fb.Sequential and loaded.seed is None and loaded.training


@pytest.mark.parametrize("settings", [np.array(3), np.array(["{}"]), np.array("{not json"), np.array("[1]"),
                                      np.array('{"seed": -1}'), np.array('{"seed": 1.5}'),
                                      np.array('{"seed": true}'), np.array('{"training": 1}')])
def test_malformed_settings_are_rejected(tmp_path, settings):
    fb.MLP([3, 4, 2], seed=0).save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        contents = {k: f[k] for k in f.files}
    contents["settings"] = settings
    np.savez(tmp_path / "bad.npz", **contents)
    with pytest.raises(ValueError, match="not a fastbp model file .*'settings'"):
        fb.load(tmp_path / "bad.npz")


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


def _dropout_mlp(seed=1):
    model = fb.MLP([5, 8, 8, 3], batchnorm=True, dropout=0.3, dtype=np.float64, seed=seed)
    return model, fb.optim.AdamW(model.parameters(), lr=1e-2)


@pytest.mark.parametrize("shuffle", [False, True])
def test_training_resumed_from_a_file_matches_uninterrupted_training(tmp_path, shuffle):
    """The dropout stream (seed, step) and fit's shuffling stream travel with the model file;
    the optimizer's state_dict is saved beside it, as one would checkpoint a run."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    ref, ref_opt = _dropout_mlp()
    ref.fit(X, y, optimizer=ref_opt, epochs=3, batch_size=16, shuffle=shuffle)
    ref.train_step(X[:8], y[:8], "cross_entropy", ref_opt)

    model, opt = _dropout_mlp()
    model.fit(X, y, optimizer=opt, epochs=1, batch_size=16, shuffle=shuffle)
    model.save(tmp_path / "m.npz")
    np.savez(tmp_path / "opt.npz", **opt.state_dict())
    loaded = fb.load(tmp_path / "m.npz")
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
        opt = fb.optim.AdamW(loaded.parameters())
        opt.load_state_dict({key: f[key] for key in f.files})
    loaded.fit(X, y, optimizer=opt, epochs=2, batch_size=16, shuffle=shuffle)
    loaded.train_step(X[:8], y[:8], "cross_entropy", opt)

    assert np.array_equal(loaded.parameters().params, ref.parameters().params)
    assert np.array_equal(loaded.state.params, ref.state.params)
    assert np.array_equal(loaded.forward(X), ref.forward(X))           # training mode: the same masks


def test_file_without_the_random_streams_still_loads(tmp_path):
    """A file written before the streams were saved loads with a fresh seed-0 model's streams."""
    model, opt = _dropout_mlp()
    X = np.random.default_rng(2).standard_normal((16, 5))
    model.fit(X, np.arange(16) % 3, optimizer=opt, epochs=2, batch_size=8)
    np.savez(tmp_path / "old.npz", format=np.array("fastbp-model"), version=np.array(1),
             architecture=np.array(json.dumps(model.config())), params=model.parameters().params,
             state=model.state.params)
    loaded = fb.load(tmp_path / "old.npz")
    np.testing.assert_array_equal(loaded.parameters().params, model.parameters().params)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    fresh, _ = _dropout_mlp(seed=0)
    fresh.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(loaded.forward(X), fresh.forward(X))
    np.testing.assert_array_equal(loaded.forward(X), fresh.forward(X))


@pytest.mark.parametrize("key, value", [("dropout_seed", np.array(1.5)), ("dropout_seed", np.array([1, 2])),
                                        ("step", np.array(True)), ("step", np.array(-1)),
                                        ("dropout_seed", np.array(2**63, dtype=np.uint64)),
                                        ("step", np.array("3")), ("rng", np.array(3)),
                                        ("rng", np.array(["{}"])), ("rng", np.array("{not json")),
                                        ("rng", np.array('{"bit_generator": "MT19937"}')),
                                        ("rng", np.array('{"bit_generator": "PCG64", "state": {"state": 1}}'))])
def test_malformed_random_streams_are_rejected(tmp_path, key, value):
    fb.MLP([3, 4, 2], dropout=0.5, seed=0).save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        contents = {k: f[k] for k in f.files}
    contents[key] = value
    np.savez(tmp_path / "bad.npz", **contents)
    with pytest.raises(ValueError, match=f"not a fastbp model file .*{key}"):
        fb.load(tmp_path / "bad.npz")
