"""Save and load models as .npz: the architecture as JSON text and the flat parameter buffer.

Loading never unpickles (``allow_pickle=False``): a model file holds only
plain arrays and a JSON string, so a file from an untrusted source cannot run code.
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
             state=model.state.params)


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
    return model
