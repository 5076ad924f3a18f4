"""Saving and loading models and training checkpoints as ``.npz`` -- no pickle, atomic writes.

The archive holds the arrays plus a JSON description (architecture, and for
checkpoints the epoch, optimizer settings, RNG state, history).  Loading uses
``allow_pickle=False`` (and no error message ever suggests otherwise) and rebuilds
layers from the JSON, so a file from a stranger cannot run code; a SHA-256 over everything inside catches truncated or
edited files.  Writes go to a temp file in the same folder, are fsynced, then
renamed over the target: a crash at any moment leaves the previous file intact.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_write, remove_stale_temp_files  # noqa: F401  (re-exported)
from .activations import GELU, LeakyReLU, Tanh
from .dropout import Dropout
from .layers import Linear, ReLU, Sigmoid, Softmax
from .model import Sequential
from .norm import BatchNorm1d, LayerNorm

FORMAT = "scratchnet-1"
_LAYER_TYPES = {"Linear": Linear, "ReLU": ReLU, "Sigmoid": Sigmoid, "Softmax": Softmax,
                "Tanh": Tanh, "LeakyReLU": LeakyReLU, "GELU": GELU, "Dropout": Dropout,
                "BatchNorm1d": BatchNorm1d, "LayerNorm": LayerNorm}


def _hyper(layer) -> dict:
    """The constructor arguments of the issue-13 layers (JSON-ready); {} for the others.

    Dropout also keeps its generator's state, so a resumed run draws the masks an
    uninterrupted one would have."""
    dtype = None if getattr(layer, "dtype", None) is None else layer.dtype.name
    if isinstance(layer, Tanh):
        return {"dtype": dtype}
    if isinstance(layer, LeakyReLU):
        return {"negative_slope": layer.negative_slope, "dtype": dtype}
    if isinstance(layer, GELU):
        return {"approximate": layer.approximate, "dtype": dtype}
    if isinstance(layer, Dropout):
        return {"p": layer.p, "dtype": dtype, "rng_state": _json_safe(layer.rng.bit_generator.state)}
    if isinstance(layer, BatchNorm1d):
        return {"num_features": layer.num_features, "eps": layer.eps, "momentum": layer.momentum,
                "affine": layer.affine, "track_running_stats": layer.track_running_stats, "dtype": dtype}
    if isinstance(layer, LayerNorm):
        return {"normalized_shape": layer.normalized_shape[0], "eps": layer.eps,
                "elementwise_affine": layer.elementwise_affine, "bias": layer.has_bias, "dtype": dtype}
    return {}


def _json_safe(obj):
    """A bit generator's state with its arrays as lists (MT19937's key) and NumPy integers as ints."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return int(obj) if isinstance(obj, np.integer) else obj


#: Bit generators whose state a Dropout layer's file may hold.
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _build_layer(kind: str, entry: dict, backend):
    """One issue-13 layer from its :func:`_hyper` entry."""
    args = {k: v for k, v in entry.items() if k not in ("type", "rng_state")}
    layer = _LAYER_TYPES[kind](**args, backend=backend)
    if "rng_state" in entry:
        name = entry["rng_state"].get("bit_generator")
        if name not in _BIT_GENERATORS:
            raise ValueError(f"unknown bit generator {name!r}")
        layer.rng = np.random.Generator(getattr(np.random, name)())
        layer.rng.bit_generator.state = entry["rng_state"]
    return layer


class CheckpointError(ValueError):
    """A model/checkpoint file is missing, damaged, tampered with, or not ours."""


def describe(model) -> list[dict]:
    """JSON-ready architecture of a ``Sequential`` (or a single layer)."""
    layers = model.layers if isinstance(model, Sequential) else [model]
    spec = []
    for layer in layers:
        kind = type(layer).__name__
        if kind not in _LAYER_TYPES or type(layer) is not _LAYER_TYPES[kind]:
            raise TypeError(f"cannot save layer {layer!r}: only {', '.join(_LAYER_TYPES)} are supported")
        entry = {"type": kind}
        if isinstance(layer, Linear):
            entry.update(in_features=layer.in_features, out_features=layer.out_features,
                         bias=layer.has_bias, dtype=layer.dtype.name)
        entry.update(_hyper(layer))
        if isinstance(layer, Dropout):
            # Dropout layers drawing from one generator (build_model gives them all the model's rng)
            # must share it again when loaded: two copies of one state would draw the same masks
            first = next(j for j, other in enumerate(layers) if isinstance(other, Dropout) and other.rng is layer.rng)
            if first < len(spec):
                entry.pop("rng_state")
                entry["rng_shared_with"] = first
        spec.append(entry)
    return spec


def build(spec: list[dict], backend: str | None = None) -> Sequential:
    """A ``Sequential`` with the architecture ``spec`` (parameters freshly initialised)."""
    layers = []
    for i, entry in enumerate(spec):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind not in _LAYER_TYPES:
            raise CheckpointError(f"layer {i}: unknown type {kind!r}")
        if kind == "Linear":
            layers.append(Linear(int(entry["in_features"]), int(entry["out_features"]), bias=bool(entry["bias"]),
                                 dtype=entry["dtype"], backend=backend, init="zeros"))
        elif kind in ("Tanh", "LeakyReLU", "GELU", "Dropout", "BatchNorm1d", "LayerNorm"):
            shared = entry.get("rng_shared_with") if kind == "Dropout" else None
            if shared is not None and not (isinstance(shared, int) and 0 <= shared < i
                                           and isinstance(layers[shared], Dropout)):
                raise CheckpointError(f"layer {i}: Dropout shares the generator of layer {shared!r}, which is not "
                                      "an earlier Dropout layer")
            try:
                layers.append(_build_layer(kind, {k: v for k, v in entry.items() if k != "rng_shared_with"},
                                           backend))
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                raise CheckpointError(f"layer {i}: bad {kind} settings: {exc}") from None
            if shared is not None:
                layers[-1].rng = layers[shared].rng
        else:
            layers.append(_LAYER_TYPES[kind](backend=backend))
    return Sequential(layers)


def _digest(meta_json: str, arrays: dict) -> str:
    h = hashlib.sha256(meta_json.encode())
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save(model, path, *, extra: dict | None = None, arrays: dict | None = None) -> Path:
    """Write ``model`` (and optional JSON ``extra`` / named ``arrays``) to ``path`` atomically."""
    path = Path(path)
    spec = describe(model)
    layers = model.layers if isinstance(model, Sequential) else [model]
    out = {}
    for i, layer in enumerate(layers):
        for name, value in layer.params.items():
            out[f"param/{i}/{name}"] = np.asarray(value)
        for name, value in getattr(layer, "buffers", {}).items():
            out[f"buffer/{i}/{name}"] = np.asarray(value)
    for key, value in (arrays or {}).items():
        out[f"extra/{key}"] = np.asarray(value)
    meta = json.dumps({"format": FORMAT, "architecture": spec, "extra": extra or {}}, sort_keys=True)
    out["__meta__"] = np.array(meta)
    out["__digest__"] = np.array(_digest(meta, {k: v for k, v in out.items() if k != "__meta__"}))
    with atomic_write(path) as f:
        np.savez(f, **out)
    return path


def _not_ours(path, why: str) -> CheckpointError:
    return CheckpointError(f"{path} is not a scratchnet .npz archive ({why})")


def _arrays(path: Path) -> dict:
    """Every array in the ``.npz`` at ``path``, never unpickling; :class:`CheckpointError` otherwise."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        what = "a single .npy array" if head == b"\x93NUM" else "empty" if not head else "not a zip archive"
        raise _not_ours(path, f"{what}; expected a file written by net.io.save or python -m net train")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {}
            for key in z.files:
                try:
                    arrays[key] = z[key]
                except ValueError as exc:
                    if "pickle" in str(exc).lower():
                        raise _not_ours(path, f"member {key!r} holds Python objects, which are never loaded") \
                            from None
                    raise
            return arrays
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        why = "unreadable contents" if "pickle" in str(exc).lower() else exc  # never suggest unpickling
        raise CheckpointError(f"{path}: not a readable .npz archive (truncated or damaged?): {why}") from None


def read(path) -> tuple[dict, dict]:
    """``(meta, arrays)`` from a file written by :func:`save`, verified; :class:`CheckpointError` if not."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    arrays = _arrays(path)
    if "__meta__" not in arrays or "__digest__" not in arrays:
        raise _not_ours(path, "no scratchnet metadata inside")
    meta_json = str(arrays.pop("__meta__"))
    digest = str(arrays.pop("__digest__"))
    if _digest(meta_json, arrays) != digest:
        raise CheckpointError(f"{path}: checksum mismatch: the file was modified or damaged after it was written")
    try:
        meta = json.loads(meta_json)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: bad metadata: {exc}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown format {meta.get('format')!r} (expected {FORMAT!r})")
    return meta, arrays


def load(path, backend: str | None = None, *, widths=None, dtype=None) -> Sequential:
    """Rebuild the ``Sequential`` saved at ``path`` (a model file or a training checkpoint).

    ``widths`` (e.g. ``[784, 512, 10]``) and ``dtype`` are checked against the file when given.
    """
    model = _model_from(path, *read(path), backend)
    linears = [layer for layer in model.layers if isinstance(layer, Linear)]
    if widths is not None:
        found = [linears[0].in_features] + [layer.out_features for layer in linears] if linears else []
        if found != [int(w) for w in widths]:
            raise CheckpointError(f"{path}: layer widths {'-'.join(map(str, found)) or 'none'} do not match the "
                                  f"expected {'-'.join(map(str, widths))}")
    if dtype is not None and any(layer.dtype != np.dtype(dtype) for layer in linears):
        raise CheckpointError(f"{path}: parameters are {linears[0].dtype}, expected {np.dtype(dtype)}")
    return model


def _model_from(path, meta: dict, arrays: dict, backend: str | None) -> Sequential:
    """The ``Sequential`` described by an already read and verified file."""
    model = build(meta["architecture"], backend=backend)
    for i, layer in enumerate(model.layers):
        for name, value in layer.params.items():
            key = f"param/{i}/{name}"
            if key not in arrays:
                raise CheckpointError(f"{path}: missing parameter {key}")
            if arrays[key].shape != value.shape or arrays[key].dtype != value.dtype:
                raise CheckpointError(f"{path}: parameter {key} has shape {arrays[key].shape} {arrays[key].dtype}, "
                                      f"expected {value.shape} {value.dtype}")
            value[...] = arrays[key]
        for name, value in getattr(layer, "buffers", {}).items():
            key = f"buffer/{i}/{name}"
            if key not in arrays:
                raise CheckpointError(f"{path}: missing buffer {key}")
            if arrays[key].shape != value.shape or arrays[key].dtype != value.dtype:
                raise CheckpointError(f"{path}: buffer {key} has shape {arrays[key].shape} {arrays[key].dtype}, "
                                      f"expected {value.shape} {value.dtype}")
            value[...] = arrays[key]
    return model


def save_checkpoint(path, model, optimizer, *, epoch: int, rng: np.random.Generator, history: list,
                    config: dict | None = None, scheduler=None) -> Path:
    """Model + optimizer state + epoch + RNG state + history (+ the scheduler's state), atomically.

    The optimizer's buffers (every entry of its ``state_dict()`` that is a list of arrays, e.g.
    SGD's ``velocity``, Adam's ``exp_avg``) are stored as arrays ``<name>/<i>``, the rest of its
    state (type, hyper-parameters, step count) and the scheduler's as JSON.
    """
    state = dict(optimizer.state_dict())
    arrays, lists = {}, {}
    for key, value in list(state.items()):
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, np.ndarray) for v in value):
            arrays.update({f"{key}/{i}": v for i, v in enumerate(value)})
            lists[key] = len(value)
            del state[key]
    state["__arrays__"] = lists
    extra = {"epoch": int(epoch), "optimizer": state, "rng_state": rng.bit_generator.state,
             "history": history, "config": config or {}}
    if scheduler is not None:
        extra["scheduler"] = scheduler.state_dict()
    return save(model, path, extra=extra, arrays=arrays)


def load_checkpoint(path, backend: str | None = None) -> dict:
    """``{"model", "epoch", "optimizer_state", "scheduler_state", "rng", "history", "config"}`` from
    :func:`save_checkpoint` (``scheduler_state`` None when none was saved).  Checkpoints written
    before the optimiser buffers were generalised (SGD's ``velocity/<i>`` only) load as before."""
    meta, arrays = read(path)
    model = _model_from(path, meta, arrays, backend)
    extra = meta.get("extra", {})
    if "epoch" not in extra or "rng_state" not in extra:
        raise CheckpointError(f"{path}: a model file, not a training checkpoint (no epoch/RNG state)")
    state = dict(extra["optimizer"])
    lists = state.pop("__arrays__", None)
    if lists is None:                           # the earlier format: SGD's velocity/<i>, or none
        vel_keys = sorted((k for k in arrays if k.startswith("extra/velocity/")),
                          key=lambda k: int(k.rsplit("/", 1)[1]))
        state["velocity"] = [arrays[k] for k in vel_keys] if vel_keys else None
    else:
        for key, n in lists.items():
            missing = [f"{key}/{i}" for i in range(int(n)) if f"extra/{key}/{i}" not in arrays]
            if missing:
                raise CheckpointError(f"{path}: optimizer state {missing[0]} is missing")
            state[key] = [arrays[f"extra/{key}/{i}"] for i in range(int(n))]
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = extra["rng_state"]
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: bad RNG state: {exc}") from None
    return {"model": model, "epoch": int(extra["epoch"]), "optimizer_state": state,
            "scheduler_state": extra.get("scheduler"), "rng": rng, "history": extra.get("history", []),
            "config": extra.get("config", {})}
