"""Save and load models as .npz: the architecture as JSON text and the flat parameter buffer.

Loading never unpickles (``allow_pickle=False``): a model file holds only
plain arrays and JSON strings, so a file from an untrusted source cannot run code.

Keys: ``format``, ``version``, ``architecture`` (JSON), ``params``, ``state``
(BatchNorm statistics) and the model's random streams, so that training resumed
from a file (with the optimizer's ``state_dict`` restored too) continues bit for
bit: ``dropout_seed`` and ``step`` (int64 scalars: dropout masks are a function
of them) and ``rng`` (JSON: the bit generator state ``fit`` shuffles from).
Keys added after format 1's first files are optional: a file without them loads
as before (a fresh seed-0 model's streams).  ``version`` changes only for a
change an older reader would misread; an older fastbp ignores the extra keys.
"""
import json
import os
import zipfile

import numpy as np

FORMAT = "fastbp-model"
VERSION = 1


def save(model, path):
    """Write ``model`` to ``path`` (numpy adds ``.npz`` when missing)."""
    np.savez(path, format=np.array(FORMAT), version=np.array(VERSION),
             architecture=np.array(json.dumps(model.config())), params=model.arena.params,
             state=model.state.params, dropout_seed=np.array(model._dropout_seed, dtype=np.int64),
             step=np.array(model._step, dtype=np.int64),
             rng=np.array(json.dumps(model._rng.bit_generator.state)))


def load(path, model_class):
    """Rebuild the model saved at ``path``; parameters round-trip bit for bit."""
    from .layers import layer_from_config
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as f:
            contents = {key: f[key] for key in f.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{path!r} is not a fastbp model file ({exc})") from None
    if str(contents.get("format", "")) != FORMAT:
        raise ValueError(f"{path!r} is not a fastbp model file (no '{FORMAT}' marker)")
    version = int(contents["version"])
    if version > VERSION:
        raise ValueError(f"{path!r} was written by a newer fastbp (format {version}); upgrade fastbp")
    try:
        config = json.loads(str(contents["architecture"]))
        params = contents["params"]
        state = contents.get("state", np.zeros(0, dtype=params.dtype))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path!r} is not a fastbp model file (bad architecture: {exc})") from None
    try:
        layers = [layer_from_config(cfg) for cfg in config["layers"]]
        model = model_class(*layers, dtype=config["dtype"], seed=0)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:    # a malformed architecture
        raise ValueError(f"{path!r} is not a fastbp model file (bad architecture: {exc!r})") from None
    for name, saved, buf in (("parameters", params, model.arena.params), ("state", state, model.state.params)):
        if saved.dtype != model.dtype or saved.shape != buf.shape:
            raise ValueError(f"{path!r}: {name} of shape {saved.shape} and dtype {saved.dtype} do not fit "
                             f"the architecture ({buf.shape}, {model.dtype})")
    model.load_state_dict({"params": params, "state": state})
    _restore_streams(path, contents, model)
    return model


def _scalar_int(path, contents, key, minimum=None):
    """The 0-d integer array ``contents[key]`` as an int (None when absent)."""
    if key not in contents:
        return None
    value = contents[key]
    if value.shape != () or not np.issubdtype(value.dtype, np.integer):
        raise ValueError(f"{path!r} is not a fastbp model file ({key!r} must be an integer scalar, "
                         f"got shape {value.shape} and dtype {value.dtype})")
    value, low = int(value), np.iinfo(np.int64).min if minimum is None else minimum
    if not low <= value <= np.iinfo(np.int64).max:
        raise ValueError(f"{path!r} is not a fastbp model file ({key!r} must be an int64 >= {low}, got {value})")
    return value


def _restore_streams(path, contents, model):
    """Set the dropout seed, step counter and shuffling generator saved in ``contents``;
    a file without them (written before they were saved) keeps the fresh model's."""
    dropout_seed = _scalar_int(path, contents, "dropout_seed")
    step = _scalar_int(path, contents, "step", minimum=0)
    if "rng" in contents:
        rng = contents["rng"]
        if rng.shape != () or rng.dtype.kind != "U":
            raise ValueError(f"{path!r} is not a fastbp model file ('rng' must be a JSON string, got shape "
                             f"{rng.shape} and dtype {rng.dtype})")
        try:
            model._rng.bit_generator.state = json.loads(str(rng))
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            raise ValueError(f"{path!r} is not a fastbp model file (bad 'rng' state: {exc!r})") from None
    if dropout_seed is not None:
        model._dropout_seed = dropout_seed
    if step is not None:
        model._step = step
