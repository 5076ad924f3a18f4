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
    with pytest.raises(io.CheckpointError, match="not a readable .npz archive"):
        io.load(path)


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
    with pytest.raises(io.CheckpointError, match="not a scratchnet model file"):
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
