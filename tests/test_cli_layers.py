"""``python -m net train`` with the issue-13 layer options: --activation tanh|leaky_relu|gelu,
--dropout P and --batchnorm are saved in config.json, rebuilt into the model, and kept by --resume."""
import json
import subprocess
import sys

import numpy as np
import pytest

from net import BatchNorm1d, Dropout, Linear, Tanh, io
from net.runs import RunConfig, build_model

SPIRAL = ["--dataset", "spiral", "--no-progress", "--lr", "0.1", "--batch-size", "16", "--seed", "2"]
LAYER_OPTIONS = ["--activation", "tanh", "--dropout", "0.2", "--batchnorm"]


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "net", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          check=False, timeout=600)


def test_build_model_places_batchnorm_before_and_dropout_after_each_hidden_activation():
    cfg = RunConfig(dataset="spiral", layers=[2, 8, 8, 3], activation="tanh", dropout=0.3, batchnorm=True,
                    backend="numpy")
    model = build_model(cfg, np.random.default_rng(0))
    assert [type(layer) for layer in model] == [Linear, BatchNorm1d, Tanh, Dropout] * 2 + [Linear]
    assert model[3].p == 0.3 and model[1].num_features == 8
    plain = build_model(RunConfig(dataset="spiral", layers=[2, 8, 3], backend="numpy"), np.random.default_rng(0))
    assert [type(layer).__name__ for layer in plain] == ["Linear", "Sigmoid", "Linear"]


def test_layer_options_are_saved_and_resume_continues_the_same_run(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    res = run("train", *SPIRAL, *LAYER_OPTIONS, "--epochs", "3", "--out", straight)
    assert res.returncode == 0, res.stderr
    config = json.loads((straight / "config.json").read_text())["config"]
    assert (config["activation"], config["dropout"], config["batchnorm"]) == ("tanh", 0.2, True)
    model = io.load(straight / "model.npz")
    names = [type(layer).__name__ for layer in model]
    assert names == ["Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear"]
    assert int(model[1].buffers["num_batches_tracked"]) == 3 * -(-300 // 16)     # 19 batches an epoch
    history = json.loads((straight / "history.json").read_text())["epochs"]
    assert history[-1]["path"] == "layers"

    assert run("train", *SPIRAL, *LAYER_OPTIONS, "--epochs", "1", "--out", split).returncode == 0
    res = run("train", "--resume", split, "--epochs", "3", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert json.loads((split / "config.json").read_text())["config"] == {**config, "epochs": 3}
    resumed = io.load(split / "model.npz")
    for a, b in zip(model, resumed):                  # the same weights, running statistics and dropout stream
        for name in a.params:
            np.testing.assert_array_equal(a.params[name], b.params[name])
        for name in a.buffers:
            np.testing.assert_array_equal(a.buffers[name], b.buffers[name])


@pytest.mark.parametrize("args, message", [
    (["--dropout", "1"], "--dropout must lie in [0, 1), got 1"),
    (["--batchnorm", "--batch-size", "1"], "--batchnorm needs batches of 2 or more rows"),
])
def test_bad_layer_options_exit_2(tmp_path, args, message):
    res = run("train", "--dataset", "spiral", *args, "--out", tmp_path / "never")
    assert res.returncode == 2 and message in res.stderr, res.stderr


def test_resume_refuses_to_change_the_layers(tmp_path):
    out = tmp_path / "run"
    assert run("train", *SPIRAL, "--dropout", "0.2", "--epochs", "1", "--out", out).returncode == 0
    res = run("train", "--resume", out, "--epochs", "2", "--batchnorm", "--no-progress")
    assert res.returncode == 2 and "the run was made with --no-batchnorm" in res.stderr, res.stderr
    res = run("train", "--resume", out, "--epochs", "2", "--dropout", "0.2", "--no-progress")
    assert res.returncode == 0, res.stderr


DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not __import__("os").path.isdir(DEBIAN_FASHION_MNIST),
                    reason="needs the Debian package dataset-fashion-mnist (installed by .ci/run)")
def test_fashion_mnist_with_adam_dropout_and_batchnorm_resumes_bit_identically(tmp_path):
    """The issue's check on real data: 2 epochs straight, or 1 epoch and --resume for the second,
    give the same weights, running statistics and Adam state (2,000 samples keep it short)."""
    fm = ["--dataset", "fashion-mnist", "--data-root", DEBIAN_FASHION_MNIST, "--limit", "2000", "--no-progress",
          "--optimizer", "adam", "--lr", "1e-3", "--dropout", "0.2", "--batchnorm", "--batch-size", "64",
          "--shuffle", "--layers", "784-64-64-10"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    res = run("train", *fm, "--epochs", "2", "--out", straight)
    assert res.returncode == 0, res.stderr
    assert run("train", *fm, "--epochs", "1", "--out", split).returncode == 0
    res = run("train", "--resume", split, "--epochs", "2", "--no-progress")
    assert res.returncode == 0, res.stderr
    a, b = io.read(straight / "checkpoint.npz")[1], io.read(split / "checkpoint.npz")[1]
    assert sorted(a) == sorted(b) and any(k.startswith("buffer/") for k in a) and len(a) > 12
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    history = json.loads((straight / "history.json").read_text())["epochs"]
    assert len(history) == 2 and history[-1]["test_acc"] > 0.6
