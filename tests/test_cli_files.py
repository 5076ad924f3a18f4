"""What the command line reads and writes: the model file it loads is verified; a missing extra is one line."""
import subprocess
import sys

import numpy as np
import pytest

from net import Linear, ReLU, Sequential, io

SPIRAL = ["--dataset", "spiral", "--activation", "relu", "--init", "kaiming_normal", "--backend", "numpy",
          "--no-progress", "--batch-size", "full", "--lr", "1.0"]


def cli(*args, block=(), cwd=None):
    """``python -m net ARGS`` in a fresh process where the modules in ``block`` cannot be imported."""
    code = ("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in block) +
            "from net.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "spiral"
    res = cli("train", *SPIRAL, "--epochs", "2", "--out", out)
    assert res.returncode == 0, res.stderr
    return out


def test_without_matplotlib_training_names_the_extra_once_and_points_at_nothing_unwritten(tmp_path):
    out = tmp_path / "run"
    res = cli("train", *SPIRAL, "--epochs", "1", "--out", out, block=["matplotlib"])
    assert res.returncode == 0, res.stderr
    assert "Warning" not in res.stderr                            # no raw UserWarning with a source line
    hints = [line for line in res.stderr.splitlines() if 'pip install -e ".[plot]"' in line]
    assert len(hints) == 1 and "matplotlib is not installed" in hints[0]
    assert not (out / "curves.png").exists() and not (out / "confusion.png").exists()
    assert ".png" not in res.stdout + res.stderr                  # nothing points at a file that was not written
    assert (out / "model.npz").is_file()


def test_with_matplotlib_the_figures_written_are_named(tmp_path):
    out = tmp_path / "run"
    res = cli("train", *SPIRAL, "--epochs", "1", "--out", out)
    assert res.returncode == 0, res.stderr
    for name in ("curves.png", "confusion.png"):
        assert str(out / name) in res.stdout and (out / name).is_file()


def test_evaluate_without_matplotlib_reports_and_names_the_extra(run_dir):
    res = cli("evaluate", run_dir, block=["matplotlib"])
    assert res.returncode == 0, res.stderr
    assert "test accuracy" in res.stdout and "wrote" not in res.stdout
    assert res.stderr.strip().count("\n") == 0 and 'pip install -e ".[plot]"' in res.stderr


@pytest.mark.parametrize("command", [["evaluate"], ["predict", "--index", "0"]])
def test_a_damaged_model_file_is_reported_even_when_the_checkpoint_is_fine(run_dir, tmp_path, command):
    broken = tmp_path / "run"
    broken.mkdir()
    for name in ("config.json", "checkpoint.npz", "model.npz"):
        (broken / name).write_bytes((run_dir / name).read_bytes())
    data = (broken / "model.npz").read_bytes()
    (broken / "model.npz").write_bytes(data[: len(data) // 2])
    res = cli(command[0], broken, *command[1:])
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr.strip().count("\n") == 0 and str(broken / "model.npz") in res.stderr
    assert "Traceback" not in res.stderr


def test_a_model_file_of_another_architecture_is_reported(run_dir, tmp_path):
    other = tmp_path / "run"
    other.mkdir()
    for name in ("config.json", "checkpoint.npz"):
        (other / name).write_bytes((run_dir / name).read_bytes())
    io.save(Sequential(Linear(2, 50, rng=0), ReLU(), Linear(50, 3, rng=1)), other / "model.npz")
    res = cli("evaluate", other)
    assert res.returncode == 1
    assert "model.npz: layer widths 2-50-3 do not match the expected 2-100-3" in res.stderr


def test_evaluate_uses_the_final_model_file(run_dir, tmp_path):
    """model.npz is what evaluate scores: replace its weights (validly) and the accuracy follows them."""
    for name in ("config.json", "checkpoint.npz", "model.npz"):
        (tmp_path / name).write_bytes((run_dir / name).read_bytes())
    run_dir = tmp_path
    res = cli("evaluate", run_dir)
    assert res.returncode == 0, res.stderr
    trained = res.stdout.splitlines()[0]
    model = io.load(run_dir / "model.npz")
    for p in model.parameters():
        p.value[...] = 0                       # every logit equal: accuracy of argmax = class 0 share
    io.save(model, run_dir / "model.npz", extra={"config": {}})
    res = cli("evaluate", run_dir)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] != trained and "test accuracy 33.33%" in res.stdout.splitlines()[0]
    assert np.isfinite(float(res.stdout.split("test loss ")[1].split()[0]))


def test_predict_a_png_without_matplotlib_names_the_extra(run_dir, tmp_path):
    (tmp_path / "digit.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    res = cli("predict", run_dir, "--image", tmp_path / "digit.png", block=["matplotlib"])
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0 and 'pip install -e ".[plot]"' in res.stderr
