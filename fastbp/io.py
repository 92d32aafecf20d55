"""Save and load models as .npz: the architecture as JSON text and the flat parameter buffer.

Loading never unpickles (``allow_pickle=False``): a model file holds only
plain arrays and JSON strings, so a file from an untrusted source cannot run code.

Keys: ``format``, ``version``, ``architecture`` (JSON: the model's class name, its
layers and dtype), ``params``, ``state`` (BatchNorm statistics), ``settings`` (JSON:
the constructor's ``seed`` and the train/eval mode) and the model's random streams,
so that training resumed from a file (with the optimizer's ``state_dict`` restored
too) continues bit for bit: ``dropout_seed`` and ``step`` (int64 scalars: dropout
masks are a function of them) and ``rng`` (JSON: the bit generator state ``fit``
shuffles from).
Keys added after format 1's first files are optional: a file without them loads
as before (a fresh seed-0 model's streams).  ``version`` changes only for a
change an older reader would misread; an older fastbp ignores the extra keys.
"""
import json
import numbers
import os
import zipfile

import numpy as np

from .validation import MAX_STEP_COUNT

FORMAT = "fastbp-model"
VERSION = 1


def save(model, path):
    """Write ``model`` to ``path`` (numpy adds ``.npz`` when missing)."""
    seed = model.seed if isinstance(model.seed, numbers.Integral) and not isinstance(model.seed, bool) else None
    settings = {"seed": None if seed is None else int(seed), "training": bool(model.training)}
    np.savez(path, format=np.array(FORMAT), version=np.array(VERSION),
             architecture=np.array(json.dumps(model.config())), params=model.arena.params,
             state=model.state.params, settings=np.array(json.dumps(settings)),
             dropout_seed=np.array(model._dropout_seed, dtype=np.int64),
             step=np.array(model._step, dtype=np.int64),
             rng=np.array(json.dumps(model._rng.bit_generator.state)))


def load(path, classes):
    """Rebuild the model saved at ``path``; parameters round-trip bit for bit.

    ``classes`` maps class names to model classes (``Sequential``, ``MLP``); a file whose
    class is not among them (a user's subclass, or a file from before the name was saved)
    loads as ``classes["Sequential"]``.
    """
    from .layers import layer_from_config
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path!r}")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):     # a bare .npy array
            raise ValueError("not an .npz archive")
        with f:
            contents = {key: f[key] for key in f.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, NotImplementedError, RuntimeError) as exc:
        # NotImplementedError: zipfile's answer to a damaged "version needed to extract"
        raise ValueError(f"{path!r} is not a fastbp model file ({exc})") from None
    if str(contents.get("format", "")) != FORMAT:
        raise ValueError(f"{path!r} is not a fastbp model file (no '{FORMAT}' marker)")
    version = _scalar_int(path, contents, "version", minimum=1)
    if version is None:
        raise ValueError(f"{path!r} is not a fastbp model file (no 'version')")
    if version > VERSION:
        raise ValueError(f"{path!r} was written by a newer fastbp (format {version}); upgrade fastbp")
    try:
        config = json.loads(str(contents["architecture"]))
        params = contents["params"]
        state = contents.get("state", np.zeros(0, dtype=params.dtype))
    except (KeyError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path!r} is not a fastbp model file (bad architecture: {exc!r})") from None
    try:
        layers = [layer_from_config(cfg) for cfg in config["layers"]]
        needed = sum(layer.num_parameters for layer in layers)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:    # a malformed architecture
        raise ValueError(f"{path!r} is not a fastbp model file (bad architecture: {exc!r})") from None
    if needed != params.size:           # before anything is allocated: a damaged width could ask for terabytes
        raise ValueError(f"{path!r}: parameters of shape {params.shape} do not fit the architecture "
                         f"({needed:,} parameters)")
    try:
        model_class = classes.get(config.get("class"), classes["Sequential"])
        model = model_class.from_layers(layers, dtype=config["dtype"], seed=0)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path!r} is not a fastbp model file (bad architecture: {exc!r})") from None
    for name, saved, buf in (("parameters", params, model.arena.params), ("state", state, model.state.params)):
        if saved.dtype != model.dtype or saved.shape != buf.shape:
            raise ValueError(f"{path!r}: {name} of shape {saved.shape} and dtype {saved.dtype} do not fit "
                             f"the architecture ({buf.shape}, {model.dtype})")
    try:
        model.load_state_dict({"params": params, "state": state})   # finite, running variances >= 0
    except ValueError as exc:
        raise ValueError(f"{path!r}: {exc}") from None
    _restore_streams(path, contents, model)
    _restore_settings(path, contents, model)
    return model


def _restore_settings(path, contents, model):
    """The constructor's seed and the train/eval mode; a file without them (written before
    they were saved) gives seed None (not known) and training mode, as a new model has."""
    settings = {}
    if "settings" in contents:
        text = contents["settings"]
        try:
            if text.shape != () or text.dtype.kind != "U":
                raise ValueError(f"a JSON string, got shape {text.shape} and dtype {text.dtype}")
            settings = json.loads(str(text))
            if not isinstance(settings, dict):
                raise ValueError("not a JSON object")
            seed, training = settings.get("seed"), settings.get("training", True)
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
                raise ValueError(f"seed must be a non-negative integer or null, got {seed!r}")
            if not isinstance(training, bool):
                raise ValueError(f"training must be true or false, got {training!r}")
        except ValueError as exc:
            raise ValueError(f"{path!r} is not a fastbp model file (bad 'settings': {exc})") from None
    model.seed = settings.get("seed")
    model.train(settings.get("training", True))


def _scalar_int(path, contents, key, minimum=None, maximum=None):
    """The 0-d integer array ``contents[key]`` as an int in [minimum, maximum] (default: int64's
    range; None when absent)."""
    if key not in contents:
        return None
    value = contents[key]
    if value.shape != () or not np.issubdtype(value.dtype, np.integer):
        raise ValueError(f"{path!r} is not a fastbp model file ({key!r} must be an integer scalar, "
                         f"got shape {value.shape} and dtype {value.dtype})")
    value = int(value)
    low = np.iinfo(np.int64).min if minimum is None else minimum
    high = np.iinfo(np.int64).max if maximum is None else maximum
    if not low <= value <= high:
        raise ValueError(f"{path!r} is not a fastbp model file ({key!r} must be an int in [{low}, {high}], "
                         f"got {value})")
    return value


def _restore_streams(path, contents, model):
    """Set the dropout seed, step counter and shuffling generator saved in ``contents``;
    a file without them (written before they were saved) keeps the fresh model's."""
    dropout_seed = _scalar_int(path, contents, "dropout_seed")
    step = _scalar_int(path, contents, "step", minimum=0, maximum=MAX_STEP_COUNT)
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
