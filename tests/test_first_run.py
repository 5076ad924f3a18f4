"""First run: the user is told when Numba compiles, and compile time stays out of the epoch's time."""
import json
import subprocess
import sys

# Runs `python -m net train` with every Numba compilation made to look 1000 s long: the clock the
# run reads (time.perf_counter) jumps by 1000 s whenever a compilation starts.
CHILD = """
import sys, time
from numba.core import event

real, jumps = time.perf_counter, []

class Slow(event.Listener):
    def on_start(self, ev):
        jumps.append(1000.0)
    def on_end(self, ev):
        pass

event.register("numba:compile", Slow())
time.perf_counter = lambda: real() + sum(jumps)
from net.cli import main
status = main(sys.argv[1:])
print(f"compilations: {len(jumps)}")
sys.exit(status)
"""
MESSAGE = "compiling kernels (first run only)..."


def test_compiling_is_announced_and_kept_out_of_the_epoch_time(tmp_path):
    env = {**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}   # a cold cache

    def train(out):
        res = subprocess.run([sys.executable, "-c", CHILD, "train", "--dataset", "spiral", "--epochs", "2",
                              "--no-progress", "--out", str(out)], capture_output=True, text=True, env=env, check=False,
                             timeout=900)
        assert res.returncode == 0, res.stderr
        return res.stdout.splitlines(), json.loads((out / "history.json").read_text())["epochs"]

    lines, epochs = train(tmp_path / "cold")
    assert int(lines[-1].split()[-1]) > 0                        # Numba did compile in this run
    assert lines.count(MESSAGE) == 1
    assert lines.index(MESSAGE) < min(i for i, line in enumerate(lines) if line.startswith("epoch 1/2 |"))
    for row in epochs:                                           # no compilation inside a timed epoch
        assert row["seconds"] < 1000, row
        assert row["samples_per_s"] == 300 / row["seconds"]
    lines, _ = train(tmp_path / "warm")                          # the same kernels, now from the cache
    assert lines[-1] == "compilations: 0" and MESSAGE not in lines
