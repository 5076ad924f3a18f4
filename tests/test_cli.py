"""``python -m net`` end to end, through subprocess."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from net import io

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
PNG = b"\x89PNG\r\n\x1a\n"
SPIRAL = ["--dataset", "spiral", "--activation", "relu", "--init", "kaiming_normal", "--no-progress"]


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "net", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          check=False, timeout=600)


def _weights(run_dir):
    return [p.value for p in io.load(Path(run_dir) / "checkpoint.npz").parameters()]


def _check_run_folder(run_dir, epochs):
    run_dir = Path(run_dir)
    for name in ("config.json", "history.json", "checkpoint.npz", "model.npz", "curves.png", "confusion.png"):
        assert (run_dir / name).is_file(), name
    record = json.loads((run_dir / "history.json").read_text())
    assert record["status"] == "finished" and record["message"] is None
    history = record["epochs"]
    assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
    assert (run_dir / "curves.png").read_bytes()[:8] == PNG
    assert (run_dir / "confusion.png").read_bytes()[:8] == PNG
    config = json.loads((run_dir / "config.json").read_text())
    assert "numpy" in config["versions"] and config["config"]["epochs"] == epochs
    io.load(run_dir / "model.npz")
    return history


def test_train_on_spiral(tmp_path):
    out = tmp_path / "run"
    res = run("train", *SPIRAL, "--lr", "1.0", "--batch-size", "full", "--epochs", "40", "--out", out)
    assert res.returncode == 0, res.stderr
    history = _check_run_folder(out, 40)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert "epoch 40/40 | train loss" in res.stdout


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="needs dataset-fashion-mnist (installed by .ci/run)")
def test_train_evaluate_predict_on_fashion_mnist(tmp_path):
    out = tmp_path / "run"
    res = run("train", "--limit", "2000", "--epochs", "2", "--val-fraction", "0.1", "--threads", "2",
              "--out", out, "--no-progress")
    assert res.returncode == 0, res.stderr
    history = _check_run_folder(out, 2)
    assert history[-1]["path"] == "fused" and history[-1]["test_acc"] > 0.5
    assert "val_acc" in history[-1]
    res = run("evaluate", out)
    assert res.returncode == 0, res.stderr
    assert "test accuracy" in res.stdout and "Ankle boot" in res.stdout
    res = run("predict", out, "--index", "0")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("prediction: ") and "truth: Ankle boot" in res.stdout
    img = tmp_path / "img.npy"
    from net.data import fashion_mnist
    np.save(img, fashion_mnist(DEBIAN, download=False, flatten=False)[2][0])
    res = run("predict", out, "--image", img)
    assert res.returncode == 0, res.stderr
    import matplotlib.image
    png = tmp_path / "img.png"
    matplotlib.image.imsave(png, np.load(img), cmap="gray", vmin=0, vmax=1)
    res_png = run("predict", out, "--image", png)
    assert res_png.returncode == 0, res_png.stderr
    assert res_png.stdout.splitlines()[0].split(" (")[0] == res.stdout.splitlines()[0].split(" (")[0]
    res = run("predict", out, "--image", tmp_path / "missing.png")
    assert res.returncode == 2 and "no such file" in res.stderr


@pytest.mark.parametrize("extra", [
    ["--shuffle", "--batch-size", "8", "--momentum", "0.9", "--backend", "numpy"],
    ["--shuffle", "--batch-size", "1", "--backend", "numba"],
], ids=["minibatch-momentum", "fused-per-sample"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, extra):
    common = [*SPIRAL, "--lr", "0.05", "--seed", "3", *extra]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run("train", *common, "--epochs", "3", "--out", straight).returncode == 0
    assert run("train", *common, "--epochs", "1", "--out", split).returncode == 0
    res = run("train", "--resume", split, "--epochs", "3", "--no-progress")
    assert res.returncode == 0, res.stderr
    for a, b in zip(_weights(straight), _weights(split)):
        np.testing.assert_array_equal(a, b)
    assert len(json.loads((split / "history.json").read_text())["epochs"]) == 3


@pytest.mark.parametrize("args,message", [
    (["--dataset", "cifar"], "invalid choice: 'cifar' (choose from 'fashion-mnist', 'mnist', 'spiral')"),
    (["--activation", "softplus"], "invalid choice: 'softplus' (choose from 'sigmoid', 'relu', 'identity', 'tanh', "
                                   "'leaky_relu', 'gelu')"),
    (["--loss", "hinge"], "invalid choice: 'hinge' (choose from 'softmax-ce', 'mse')"),
    (["--layers", "784-x-10"], "malformed --layers '784-x-10': expected widths joined by '-'"),
    (["--layers", "784"], "need at least two positive widths"),
    (["--layers", "100-10"], "--layers starts with 100 inputs but fashion-mnist has 784 features"),
    (["--lr", "0"], "--lr must be > 0, got 0"),
    (["--lr", "-1"], "--lr must be > 0, got -1"),
    (["--epochs", "0"], "--epochs must be > 0, got 0"),
    (["--batch-size", "zero"], "a positive integer or 'full'"),
    (["--threads", "2", "--momentum", "0.9"], "--threads > 1 with --batch-size 1 needs the fused per-sample kernel"),
    (["--resume", "."], "no checkpoint.npz there"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    res = run("train", *args, "--out", tmp_path / "never", cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert message in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "never").exists()


def test_spiral_shuffles_by_default_image_sets_keep_file_order(tmp_path):
    res = run("train", "--dataset", "spiral", "--epochs", "1", "--no-progress", "--out", tmp_path / "s")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "s" / "config.json").read_text())["config"]["shuffle"] is True
    res = run("train", "--dataset", "spiral", "--no-shuffle", "--no-progress", "--out", tmp_path / "n")
    assert json.loads((tmp_path / "n" / "config.json").read_text())["config"]["shuffle"] is False
    from net.cli import _config_from_args, build_parser
    args = build_parser().parse_args(["train"])
    assert _config_from_args(args).shuffle is False and _config_from_args(args).layers == [784, 512, 512, 10]


def test_evaluate_without_a_run_folder(tmp_path):
    res = run("evaluate", tmp_path)
    assert res.returncode == 2 and "no checkpoint.npz" in res.stderr


def test_console_script_is_declared():
    import tomllib

    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["scratchnet"] == "net.cli:main"


# ---- issue 12: divergence, --data-root, Ctrl-C, the program's name --------------------------------

DIVERGES_IN_EPOCH_2 = ["--dataset", "spiral", "--activation", "identity", "--lr", "10", "--batch-size", "16",
                       "--epochs", "3", "--no-progress"]


def test_divergence_is_one_line_exit_1_and_recorded_in_history(tmp_path):
    out = tmp_path / "run"
    res = run("train", *DIVERGES_IN_EPOCH_2, "--out", out)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    # where (the run's epoch, not fit's: each epoch is one fit call) and what to try
    assert lines[0].startswith("python -m net: training diverged: loss became non-finite in epoch 2 at sample ")
    assert "lower the learning rate (--lr 10 now)" in lines[0]
    record = json.loads((out / "history.json").read_text())
    assert record["status"] == "failed" and "in epoch 2 at sample" in record["message"]
    assert [h["epoch"] for h in record["epochs"]] == [1]
    assert io.load_checkpoint(out / "checkpoint.npz")["epoch"] == 1 and not (out / "model.npz").exists()


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="the data must exist elsewhere for the old fallback to show")
@pytest.mark.parametrize("make", ["missing", "empty"])
def test_a_data_root_without_the_data_is_an_error_naming_it(tmp_path, make):
    root = tmp_path / "data"
    if make == "empty":
        root.mkdir()
    res = run("train", "--data-root", root, "--limit", "100", "--no-progress", "--out", tmp_path / "run")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"python -m net: error: --data-root={root}: "), res.stderr
    assert ("no such folder" if make == "missing" else "0 of the 4 fashion-mnist files") in lines[0]
    assert not (tmp_path / "run").exists()


def test_the_program_name_is_the_one_typed():
    from net.cli import prog_name

    assert prog_name("/usr/lib/python3/site-packages/net/__main__.py") == "python -m net"
    assert prog_name("/home/me/.venv/bin/scratchnet") == "scratchnet"
    assert prog_name("C:/venv/Scripts/scratchnet.exe") == "scratchnet"


def test_the_console_script_says_scratchnet_in_usage_and_errors():
    # what pip's `scratchnet` wrapper does: sys.argv[0] is the script's path, then main()
    wrapper = "import sys; from net.cli import main; sys.argv[0] = '/venv/bin/scratchnet'; sys.exit(main())"
    res = subprocess.run([sys.executable, "-c", wrapper, "train", "--lr", "0"], capture_output=True, text=True,
                         check=False, timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("scratchnet: error: argument --lr"), res.stderr
    res = subprocess.run([sys.executable, "-c", wrapper, "train", "--help"], capture_output=True, text=True,
                         check=False, timeout=120)
    assert res.stdout.startswith("usage: scratchnet train"), res.stdout[:200]
    res = run("train", "--help")
    assert res.stdout.startswith("usage: python -m net train"), res.stdout[:200]


def _interrupt_after_first_epoch(out, delay):
    """Start a training run, wait for its first epoch line, sleep ``delay`` and send SIGINT."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "net", "train", "--limit", "6000", "--epochs", "50",
                             "--no-progress", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        for line in proc.stdout:
            if line.startswith("epoch 1/50 |"):
                break
        time.sleep(delay)               # lands in the next epoch's kernel calls, or its scoring
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, stderr


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="needs dataset-fashion-mnist (installed by .ci/run)")
def test_ctrl_c_during_a_fused_epoch_exits_130_with_a_resumable_checkpoint(tmp_path):
    for k, delay in enumerate([0.1, 0.2, 0.3]):     # SIGINT at different points of epoch 2 (the old single
        #                                              kernel call per epoch ended in a SystemError each time)
        out = tmp_path / f"run{k}"
        rc, stderr = _interrupt_after_first_epoch(out, delay)
        assert rc == 130, stderr
        assert "Traceback" not in stderr and "SystemError" not in stderr, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("interrupted; the last finished epoch's checkpoint is intact "
                                                       "(resume with "), stderr
        assert lines[0].endswith(f"python -m net train --resume {out})"), stderr
        record = json.loads((out / "history.json").read_text())
        assert record["status"] == "interrupted"
        done = io.load_checkpoint(out / "checkpoint.npz")["epoch"]
        assert done >= 1 and [h["epoch"] for h in record["epochs"]] == list(range(1, done + 1))
    res = run("train", "--resume", out, "--epochs", done + 1, "--no-progress")
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "history.json").read_text())["status"] == "finished"
