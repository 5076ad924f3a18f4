"""Model files and checkpoints: round trips, no pickle, damage detection, atomic writes under SIGKILL."""
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from net import SGD, Linear, ReLU, Sequential, Sigmoid, Softmax, io


def _model(backend="numpy"):
    return Sequential(Linear(4, 6, rng=0, backend=backend), ReLU(), Linear(6, 5, rng=1, dtype=np.float64, bias=False),
                      Sigmoid(), Linear(5, 3, rng=2), Softmax())


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_round_trip(tmp_path, backend, rng):
    model = _model()
    path = io.save(model, tmp_path / "m.npz")
    loaded = io.load(path, backend=backend)
    assert [type(a) for a in loaded] == [type(b) for b in model]
    assert loaded.backend == backend
    for a, b in zip(model.parameters(), loaded.parameters()):
        assert a.name == b.name and a.value.dtype == b.value.dtype
        np.testing.assert_array_equal(a.value, b.value)
    x = rng.standard_normal((3, 4))
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


def test_loading_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __meta__=np.array([object()], dtype=object), __digest__=np.array("x"))
    with pytest.raises(io.CheckpointError, match="holds Python objects, which are never loaded") as info:
        io.load(path)
    assert "pickle" not in str(info.value).replace(str(path), "").lower()


@pytest.mark.parametrize("content, why", [
    ("text", "not a zip archive"), ("npy", "a single .npy array"), ("object-npy", "a single .npy array"),
    ("empty", "empty"), ("pickle", "not a zip archive")])
def test_foreign_files_are_named_and_never_suggest_unpickling(tmp_path, content, why):
    path = tmp_path / "thing.npz"
    if content == "text":
        path.write_text("# scratchnet\n\nA README, not a model.\n")
    elif content == "npy":
        np.save(tmp_path / "a.npy", np.zeros(3))
        path = tmp_path / "a.npy"
    elif content == "object-npy":
        np.save(tmp_path / "a.npy", np.array([object()], dtype=object), allow_pickle=True)
        path = tmp_path / "a.npy"
    elif content == "pickle":
        import pickle

        path.write_bytes(pickle.dumps({"W": [1, 2]}))
    else:
        path.write_bytes(b"")
    with pytest.raises(io.CheckpointError) as info:
        io.load(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not a scratchnet .npz archive ({why}")
    assert "pickle" not in message.replace(str(path), "").lower() and "\n" not in message


def test_load_checks_expected_widths_and_dtype(tmp_path):
    path = io.save(Sequential(Linear(4, 6, rng=0), ReLU(), Linear(6, 3, rng=1)), tmp_path / "m.npz")
    assert len(io.load(path, widths=[4, 6, 3], dtype="float32")) == 3
    with pytest.raises(io.CheckpointError, match="m.npz: layer widths 4-6-3 do not match the expected 4-8-3"):
        io.load(path, widths=[4, 8, 3])
    with pytest.raises(io.CheckpointError, match="m.npz: parameters are float32, expected float64"):
        io.load(path, dtype="float64")


def test_truncated_file(tmp_path):
    path = io.save(_model(), tmp_path / "m.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(io.CheckpointError, match="m.npz"):
        io.load(path)


def test_tampered_file(tmp_path):
    path = io.save(_model(), tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["param/0/W"] = arrays["param/0/W"] + 1
    np.savez(path, **arrays)
    with pytest.raises(io.CheckpointError, match="checksum mismatch"):
        io.load(path)


def test_not_ours_and_missing(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(io.CheckpointError, match=r"other.npz is not a scratchnet .npz archive \(no scratchnet metadata"):
        io.load(tmp_path / "other.npz")
    with pytest.raises(io.CheckpointError, match="no such file"):
        io.load(tmp_path / "nope.npz")


def test_unknown_layer_cannot_be_saved(tmp_path):
    class Custom(ReLU):
        pass

    with pytest.raises(TypeError, match="cannot save layer"):
        io.save(Sequential(Linear(2, 2), Custom()), tmp_path / "m.npz")


def test_checkpoint_round_trip(tmp_path):
    model = _model()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for p in model.parameters():
        p.layer.grads[p.name] = np.ones_like(p.value)
    opt.step()
    rng = np.random.default_rng(42)
    rng.permutation(10)
    io.save_checkpoint(tmp_path / "c.npz", model, opt, epoch=7, rng=rng, history=[{"epoch": 7}], config={"lr": 0.1})
    state = io.load_checkpoint(tmp_path / "c.npz")
    assert state["epoch"] == 7 and state["history"] == [{"epoch": 7}] and state["config"] == {"lr": 0.1}
    assert state["rng"].integers(1 << 30) == rng.integers(1 << 30)
    for v, w in zip(state["optimizer_state"]["velocity"], opt.velocity):
        np.testing.assert_array_equal(v, w)
    with pytest.raises(io.CheckpointError, match="a model file, not a training checkpoint"):
        io.load_checkpoint(io.save(model, tmp_path / "m.npz"))


WRITER = """
import sys
import numpy as np
from net import Linear, Sequential, SGD, io
model = Sequential(Linear(300, 300, rng=0))
opt = SGD(model.parameters(), lr=0.1)
rng = np.random.default_rng(0)
print("ready", flush=True)
epoch = 0
while True:
    epoch += 1
    model[0].params["W"][...] = epoch
    io.save_checkpoint(sys.argv[1], model, opt, epoch=epoch, rng=rng, history=[])
"""


def test_sigkill_while_writing_leaves_a_loadable_checkpoint(tmp_path):
    target = tmp_path / "checkpoint.npz"
    for delay in (0.0, 0.13, 0.31):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while not target.exists() and time.monotonic() < deadline:   # at least one finished write
            time.sleep(0.01)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        state = io.load_checkpoint(target)           # complete and verified
        assert np.all(state["model"][0].params["W"] == state["epoch"])
        leftovers = [p.name for p in tmp_path.iterdir() if p.name != "checkpoint.npz"]
        assert all(name.startswith(".") and name.endswith(".tmp") for name in leftovers), leftovers
        io.remove_stale_temp_files(tmp_path)
        assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]
        with zipfile.ZipFile(target) as z:
            assert z.testzip() is None


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_respect_the_umask(tmp_path, umask, expected):
    """Checkpoints, JSON and PNGs go through atomic_write: new files get 0o666 & ~umask, not mkstemp's 0600."""
    from net.atomic import atomic_write

    old = os.umask(umask)
    try:
        model_file = io.save(_model(), tmp_path / "m.npz")
        with atomic_write(tmp_path / "h.json", "w") as f:
            f.write("{}")
    finally:
        os.umask(old)
    for path in (model_file, tmp_path / "h.json"):
        assert oct(os.stat(path).st_mode & 0o777) == oct(expected), path


def test_rewriting_a_file_keeps_its_mode(tmp_path):
    path = io.save(_model(), tmp_path / "m.npz")
    os.chmod(path, 0o640)
    io.save(_model(), path)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o640)
