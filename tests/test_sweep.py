"""``python -m net sweep``: a grid of training runs on Dask distributed (the ``sweep`` extra).

Every cluster here runs on localhost: a ``LocalCluster`` shared by the module, the local
cluster the command line starts itself, and a ``dask scheduler`` + ``dask worker`` pair
started as processes by one test and stopped by PID.  ``.ci/run`` sets
``SCRATCHNET_REQUIRE_DASK=1`` so that a missing Dask fails CI instead of skipping these tests.
"""
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from net import io
from net.sweep import (ONE_THREAD, Spec, SweepError, report, run_sweep, runs, slow_malloc_warning, spec_from,
                       start_client, status_of)

try:
    import distributed
    import psutil                 # comes with distributed
except ImportError:
    if os.environ.get("SCRATCHNET_REQUIRE_DASK"):
        raise
    distributed = psutil = None
#: the tests that start a cluster; the rest (the grid, messages, the missing extra) run without Dask
needs_dask = pytest.mark.skipif(distributed is None, reason="needs the 'sweep' extra: pip install -e \".[sweep]\"")

ROOT = Path(__file__).resolve().parents[1]
ENV = {**{k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"},   # never a real cluster
       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
TIMING = ("seconds", "samples_per_s")
# small, fast spiral runs; numpy per-sample epochs are slow enough (tens of ms) to interrupt mid-run
SPIRAL = {"dataset": "spiral", "activation": "relu", "init": "kaiming_normal", "layers": "2-16-3", "lr": "0.05"}


def cli(*args, cwd=None, env=(), timeout=300):
    return subprocess.run([sys.executable, "-m", "net", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, env={**ENV, **dict(env)}, timeout=timeout)


@pytest.fixture(scope="module")
def client():
    """The local cluster `sweep` starts: LocalCluster(n_workers=2, threads_per_worker=1, processes=True)."""
    if distributed is None:
        pytest.skip("needs the 'sweep' extra: pip install -e \".[sweep]\"")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
        client = start_client(workers=2)
    yield client
    cluster = client.cluster
    client.close()
    cluster.close()


def _weights(path):
    return [p.value for p in io.load(path).parameters()]


def assert_same_run_folder(a: Path, b: Path):
    """Same files, same weights bit for bit, same config and history (but the time taken)."""
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for name in ("model.npz", "checkpoint.npz"):
        for x, y in zip(_weights(a / name), _weights(b / name), strict=True):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
    config = [json.loads((d / "config.json").read_text())["config"] for d in (a, b)]
    assert config[0] == config[1]
    hist = [json.loads((d / "history.json").read_text()) for d in (a, b)]
    assert hist[0]["status"] == hist[1]["status"] == "finished"
    strip = [[{k: v for k, v in e.items() if k not in TIMING} for e in h["epochs"]] for h in hist]
    assert strip[0] == strip[1]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---- the grid (no cluster) -----------------------------------------------------------------

def test_toml_json_and_flags_give_the_same_runs(tmp_path):
    (tmp_path / "s.toml").write_text('[train]\ndataset = "spiral"\nlayers = [2, 64, 3]\nepochs = 20\nshuffle = false\n'
                                     '[grid]\nlr = [0.01, 0.05]\nactivation = ["relu", "sigmoid"]\n')
    (tmp_path / "s.json").write_text(json.dumps({"train": {"dataset": "spiral", "layers": "2-64-3", "epochs": 20,
                                                           "shuffle": False},
                                                 "grid": {"lr": [0.01, 0.05], "activation": ["relu", "sigmoid"]}}))
    flags = spec_from(None, ["dataset=spiral", "layers=2-64-3", "epochs=20", "shuffle=false"],
                      ["lr=0.01,0.05", "activation=relu,sigmoid"])
    plans = [runs(spec_from(tmp_path / "s.toml")), runs(spec_from(tmp_path / "s.json")), runs(flags)]
    assert [r.name for r in plans[0]] == ["lr=0.01,activation=relu", "lr=0.01,activation=sigmoid",
                                          "lr=0.05,activation=relu", "lr=0.05,activation=sigmoid"]
    assert [(r.name, r.argv) for r in plans[0]] == [(r.name, r.argv) for r in plans[1]] == \
           [(r.name, r.argv) for r in plans[2]]
    assert plans[0][0].argv == ["train", "--dataset", "spiral", "--layers", "2-64-3", "--epochs", "20", "--no-shuffle",
                                "--lr", "0.01", "--activation", "relu", "--no-progress"]
    # the command line wins over the file; a --set takes an option out of the grid
    spec = spec_from(tmp_path / "s.toml", ["lr=0.1"], ["seed=0,1"])
    assert spec.grid == {"activation": ["relu", "sigmoid"], "seed": ["0", "1"]} and spec.train["lr"] == "0.1"


def test_a_runs_config_json_is_a_valid_train_table(tmp_path):
    """Options are named as in config.json, so a run's own config (nulls = defaults) is a sweep's [train]."""
    from dataclasses import asdict

    from net.runs import RunConfig
    from net.sweep import config_for

    cfg = RunConfig(dataset="spiral", layers=[2, 32, 3], activation="relu", batch_size=None, epochs=4, shuffle=True,
                    lr=0.5, seed=7, val_fraction=0.2)
    (tmp_path / "s.json").write_text(json.dumps({"train": asdict(cfg), "grid": {}}))
    (run,) = runs(spec_from(tmp_path / "s.json"))
    assert run.name == "run" and config_for(run.argv) == cfg


@pytest.mark.parametrize("text,message", [
    ('[grid]\nlearning_rate = [0.1]\n', "unknown option 'learning_rate'"),
    ('[grid]\nout = ["x"]\n', "'out' cannot be set in a sweep"),
    ('[train]\nlr = \n', "not valid TOML"),
    ('[runs]\nlr = 1\n', "unknown table(s) runs"),
])
def test_a_bad_sweep_file_is_one_line(tmp_path, text, message):
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(SweepError, match=None) as info:
        spec_from(tmp_path / "s.toml")
    assert message in str(info.value)
    res = cli("sweep", tmp_path / "s.toml", "--out", tmp_path / "out")
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and message in res.stderr
    assert not (tmp_path / "out").exists()


def test_without_dask_sweep_names_the_extra(tmp_path):
    code = ("import sys\nsys.modules['distributed'] = None\nfrom net.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    res = subprocess.run([sys.executable, "-c", code, "sweep", "--grid", "seed=0,1", "--out", tmp_path / "s"],
                         capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=120)
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().count("\n") == 0 and 'pip install -e ".[sweep]"' in res.stderr
    assert "Traceback" not in res.stderr


# ---- on a LocalCluster(n_workers=2, processes=True) -----------------------------------------

def _worker_threads():
    from threadpoolctl import threadpool_info

    import net.threads

    net.threads._controller()                     # loads the BLAS Numba calls, as a run does
    return ({k: os.environ.get(k) for k in ONE_THREAD},
            {p["internal_api"]: p["num_threads"] for p in threadpool_info()})


def test_the_local_cluster_has_one_single_threaded_worker_per_core_and_one_thread_blas(client):
    info = client.scheduler_info()["workers"]
    assert len(info) == 2 and all(w["nthreads"] == 1 for w in info.values())
    assert isinstance(client.cluster, distributed.LocalCluster)
    for env, pools in client.run(_worker_threads).values():
        assert env == ONE_THREAD
        assert pools and set(pools.values()) == {1}, pools
    # Dask's nanny default MALLOC_TRIM_THRESHOLD_=65536 makes large arrays slow (net.sweep.SLOW_MALLOC)
    assert set(client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {None}
    assert slow_malloc_warning(client) is None


# per-sample (no BLAS in training) and mini-batches whose 64x128 @ 128x128 products BLAS would split
# between threads; the layers' default init differs from SPIRAL's so that is passed through too
GRID = {"batch_size": ["1", "64"], "seed": ["0", "1"]}
FOUR = {**SPIRAL, "layers": "2-128-128-3", "epochs": "3"}
NAMES = ["batch_size=1,seed=0", "batch_size=1,seed=1", "batch_size=64,seed=0", "batch_size=64,seed=1"]


@pytest.fixture(scope="module")
def sweep4(client, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep4")
    rows = run_sweep(Spec(FOUR, GRID), out, client=client, progress=False, log=lambda line: None)
    return out, rows


def test_a_sweep_writes_the_run_folders_train_writes_bit_for_bit(sweep4, tmp_path):
    """Each run folder is what `python -m net train` writes with its options.  A sweep's runs use one
    BLAS thread, so they are compared with `train` on one BLAS thread too: the mini-batch runs' weights
    depend on how BLAS splits products between threads, and every run's test loss does (the test set's
    forward pass; per-sample training itself is on one thread -- with BLAS on two threads the last
    digits of a per-sample run's test loss differed in CI)."""
    out, rows = sweep4
    assert sorted(p.name for p in (out / "runs").iterdir()) == NAMES
    alone = {}                            # the same four `train` commands, two at a time
    for batch in GRID["batch_size"]:
        procs = {}
        for seed in GRID["seed"]:
            alone[batch, seed] = tmp_path / f"b{batch}s{seed}"
            procs[seed] = subprocess.Popen(
                [sys.executable, "-m", "net", "train", "--dataset", "spiral", "--activation", "relu", "--init",
                 "kaiming_normal", "--layers", "2-128-128-3", "--lr", "0.05", "--epochs", "3", "--batch-size", batch,
                 "--seed", seed, "--no-progress", "--out", alone[batch, seed]],
                cwd=ROOT, env={**ENV, **ONE_THREAD}, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True)
        for proc in procs.values():
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
    for (batch, seed), folder in alone.items():
        assert_same_run_folder(out / "runs" / f"batch_size={batch},seed={seed}", folder)


def test_results_csv_has_one_row_per_run_from_its_history(sweep4):
    out, rows = sweep4
    table = read_csv(out / "results.csv")
    assert list(table[0]) == ["name", "batch_size", "seed", "status", "train_loss", "train_acc", "val_loss",
                              "val_acc", "test_loss", "test_acc", "seconds", "samples_per_s", "error"]
    assert [r["name"] for r in table] == NAMES
    for row in table:
        epochs = json.loads((out / "runs" / row["name"] / "history.json").read_text())["epochs"]
        assert row["status"] == "ok" and row["error"] == "" and row["val_acc"] == ""
        assert row["name"] == f"batch_size={row['batch_size']},seed={row['seed']}"
        for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert float(row[key]) == epochs[-1][key]
        assert float(row["seconds"]) == pytest.approx(sum(e["seconds"] for e in epochs))
        assert float(row["samples_per_s"]) == pytest.approx(3 * 300 / float(row["seconds"]))
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_rebuilds_the_results_from_the_run_folders(sweep4, tmp_path):
    out, _ = sweep4
    before = (out / "results.csv").read_text()
    (out / "results.csv").unlink()
    (out / "summary.png").unlink()
    res = cli("sweep", "--report", out)
    assert res.returncode == 0, res.stderr
    assert (out / "results.csv").read_text() == before and (out / "summary.png").is_file()
    assert "4 of 4 runs finished" in res.stdout


def test_an_existing_sweep_folder_needs_resume_and_the_same_grid(sweep4):
    out, _ = sweep4
    res = cli("sweep", "--set", "dataset=spiral", "--grid", "seed=0,1", "--out", out)
    assert res.returncode == 2 and "already holds a sweep; add --resume" in res.stderr
    res = cli("sweep", "--set", "dataset=spiral", "--grid", "seed=0,1", "--out", out, "--resume")
    assert res.returncode == 2 and "the sweep there has other options" in res.stderr


def test_a_finished_run_whose_figures_were_not_written_is_only_redrawn(sweep4, tmp_path):
    """A worker killed after model.npz but before the figures: the retry redraws, trains nothing."""
    import shutil

    from net.sweep import run_one

    out, _ = sweep4
    shutil.copytree(out, tmp_path / "copy")
    run_dir = tmp_path / "copy" / "runs" / NAMES[0]
    (run_dir / "curves.png").unlink()
    before = _weights(run_dir / "model.npz")
    row = run_one(str(tmp_path / "copy"), NAMES[0], {"batch_size": "1", "seed": "0"}, runs(Spec(FOUR, GRID))[0].argv)
    assert row["status"] == "ok" and (run_dir / "curves.png").is_file()
    log = (tmp_path / "copy" / "logs" / f"{NAMES[0]}.log").read_text()
    assert "resuming from the checkpoint after epoch 3 of 3" in log
    for a, b in zip(before, _weights(run_dir / "model.npz"), strict=True):
        np.testing.assert_array_equal(a, b)


def test_failed_runs_are_recorded_and_the_others_finish(client, tmp_path):
    # identity activations at lr 10 diverge in epoch 2 (tests/test_cli.py); lr -1 is a bad option
    spec = Spec({"dataset": "spiral", "activation": "identity", "batch_size": "16", "epochs": "3"},
                {"lr": ["0.05", "10", "-1"]})
    rows = {r["name"]: r for r in run_sweep(spec, tmp_path, client=client, progress=False, log=lambda s: None)}
    assert rows["lr=0.05"]["status"] == "ok"
    assert rows["lr=10"]["status"] == "failed" and "training diverged" in rows["lr=10"]["error"]
    assert json.loads((tmp_path / "runs" / "lr=10" / "history.json").read_text())["status"] == "failed"
    assert rows["lr=-1"]["status"] == "failed" and rows["lr=-1"]["error"] == \
        "argument --lr: --lr must be > 0, got -1"                      # the message `train --lr -1` prints
    assert not (tmp_path / "runs" / "lr=-1").exists()                  # as `train` leaves no folder
    table = {r["name"]: r for r in read_csv(tmp_path / "results.csv")}
    assert {k: r["status"] for k, r in table.items()} == {"lr=0.05": "ok", "lr=10": "failed", "lr=-1": "failed"}
    assert table["lr=-1"]["error"] == rows["lr=-1"]["error"]
    # --report knows the bad option's failure too (failed/<name>.txt), not only the folders' histories
    (tmp_path / "results.csv").unlink()
    report(tmp_path, log=lambda s: None)
    assert read_csv(tmp_path / "results.csv") == list(table.values())


def test_resume_retries_a_run_stopped_by_an_error_outside_training_but_not_a_bad_option(client, tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    spec = Spec({"dataset": "mnist", "data_root": str(empty), "epochs": "1"}, {"lr": ["0.1", "0"]})
    for resume in (False, True):
        rows = {r["name"]: r for r in run_sweep(spec, tmp_path / "s", client=client, resume=resume, progress=False,
                                                log=lambda s: None)}
        assert rows["lr=0.1"]["status"] == rows["lr=0"]["status"] == "failed"
        assert str(empty) in rows["lr=0.1"]["error"] and "--lr must be > 0" in rows["lr=0"]["error"]
    logs = tmp_path / "s" / "logs"
    assert (logs / "lr=0.1.log").read_text().count("== ") == 2          # tried again: the data may be there now
    assert (logs / "lr=0.log").read_text().count("== ") == 1            # the same options fail the same way


def test_a_worker_killed_mid_run_is_retried_and_the_run_finishes_from_its_checkpoint(client, tmp_path):
    options = {**SPIRAL, "backend": "numpy", "epochs": "60"}
    straight = subprocess.Popen(   # the uninterrupted run to compare with, trained meanwhile
        [sys.executable, "-m", "net", "train", *[x for k, v in options.items() for x in (f"--{k}", v)],
         "--seed", "5", "--no-progress", "--out", tmp_path / "straight"],
        cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    spec = Spec(options, {"seed": ["5"]})
    result = {}
    driver = threading.Thread(target=lambda: result.update(rows=run_sweep(
        spec, tmp_path / "sweep", client=client, progress=False, log=lambda s: None)))
    driver.start()
    run_dir = tmp_path / "sweep" / "runs" / "seed=5"
    killed = None
    try:
        deadline = time.monotonic() + 240
        while killed is None and time.monotonic() < deadline and driver.is_alive():
            try:
                done = len(json.loads((run_dir / "history.json").read_text())["epochs"])
            except (OSError, ValueError):
                done = 0
            if done >= 2:
                busy = [w for w, keys in client.processing().items() if keys]
                if len(busy) == 1:
                    pid = client.run(os.getpid, workers=busy)[busy[0]]
                    psutil.Process(pid).kill()
                    killed = (pid, done)
            time.sleep(0.02)
    finally:
        driver.join(timeout=300)
        assert straight.wait(timeout=300) == 0, straight.stderr.read()
    assert killed is not None, "the run finished before its worker could be killed"
    assert result["rows"][0]["status"] == "ok"
    log = (tmp_path / "sweep" / "logs" / "seed=5.log").read_text()
    assert log.count("\n== ") + log.startswith("== ") == 2, log      # two attempts: the second resumed
    resumed_at = int(log.split("resuming from the checkpoint after epoch ")[1].split()[0])
    assert resumed_at >= killed[1]
    assert_same_run_folder(run_dir, tmp_path / "straight")
    client.wait_for_workers(2, timeout=120)                          # the nanny restarted the worker


# ---- the command line's own local cluster: kill the driver, then --resume ----------------------

@needs_dask
def test_resume_after_the_driver_is_killed_reruns_only_the_unfinished_runs(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", *[x for k, v in {**SPIRAL, "backend": "numpy", "epochs": "15"}.items()
                       for x in ("--set", f"{k}={v}")], "--grid", "seed=0,1,2,3", "--out", out, "--workers", "2"]
    driver = subprocess.Popen([sys.executable, "-m", "net", *map(str, args), "--no-progress"], cwd=ROOT, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    family = []
    try:
        deadline = time.monotonic() + 240
        statuses = []
        while time.monotonic() < deadline and driver.poll() is None:
            statuses = [status_of(p) for p in sorted((out / "runs").glob("*"))]
            if "ok" in statuses and "running" in statuses:
                break
            time.sleep(0.05)
        assert driver.poll() is None, "the sweep finished before it could be killed"
        family = psutil.Process(driver.pid).children(recursive=True)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        # the local cluster's processes follow their parent (Dask watches it); none keeps writing
        gone, alive = psutil.wait_procs(family, timeout=60)
        assert not alive, f"processes outliving the killed sweep: {[p.pid for p in alive]}"
    finally:
        for p in family:
            if p.is_running():
                p.kill()
    finished = {p.name: (p / "model.npz").stat().st_mtime_ns for p in (out / "runs").iterdir()
                if status_of(p) == "ok"}
    assert finished and len(finished) < 4
    assert {r["status"] for r in read_csv(out / "results.csv")} <= {"ok", "running", "pending"}
    res = cli(*args, "--resume", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert f"({len(finished)} already done)" in res.stdout
    for name, mtime in finished.items():
        assert (out / "runs" / name / "model.npz").stat().st_mtime_ns == mtime       # not trained again
        assert (out / "logs" / f"{name}.log").read_text().count("== ") == 1
    assert [r["status"] for r in read_csv(out / "results.csv")] == ["ok"] * 4


@needs_dask
def test_ctrl_c_stops_the_sweep_with_one_line_and_its_cluster_with_it(tmp_path):
    out = tmp_path / "sweep"
    driver = subprocess.Popen([sys.executable, "-m", "net", "sweep", *[x for k, v in {
        **SPIRAL, "backend": "numpy", "epochs": "200"}.items() for x in ("--set", f"{k}={v}")],
        "--grid", "seed=0,1", "--out", str(out), "--workers", "2", "--no-progress"], cwd=ROOT, env=ENV,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    family = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None and \
                "running" not in [status_of(p) for p in (out / "runs").glob("*")]:
            time.sleep(0.05)
        family = psutil.Process(driver.pid).children(recursive=True)
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=120)
        _, alive = psutil.wait_procs(family, timeout=60)
        assert not alive, f"processes outliving the interrupted sweep: {[p.pid for p in alive]}"
    finally:
        for p in family:
            if p.is_running():
                p.kill()
    assert driver.returncode == 130, err
    assert "interrupted; the finished runs are kept" in err and "--resume" in err and "Traceback" not in err
    assert {r["status"] for r in read_csv(out / "results.csv")} <= {"running", "pending", "ok"}


# ---- an existing cluster: `dask scheduler` + `dask worker` processes ----------------------------

def _stop(proc):
    """Stop a process we started and everything it started, by PID."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in family:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(family, timeout=20)
    for p in alive:
        p.kill()
    proc.wait(timeout=20)


@needs_dask
def test_a_sweep_on_a_separately_started_scheduler_and_worker(tmp_path):
    file = tmp_path / "scheduler.json"
    log = open(tmp_path / "dask.log", "w")
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--dashboard-address", ":0", "--scheduler-file", file],
                                 cwd=tmp_path, env=ENV, stdout=log, stderr=subprocess.STDOUT)
    worker = None
    try:
        deadline = time.monotonic() + 120
        while not file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        config = tmp_path / "dask-config"           # the README's advice for a cluster's workers
        config.mkdir()
        (config / "scratchnet.yaml").write_text("distributed:\n  nanny:\n    pre-spawn-environ:\n"
                                                "      MALLOC_TRIM_THRESHOLD_: null\n")
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                  cwd=tmp_path, env={**ENV, "DASK_CONFIG": str(config)}, stdout=log,
                                  stderr=subprocess.STDOUT)
        out = tmp_path / "sweep"
        args = ["sweep", *[x for k, v in {**SPIRAL, "epochs": "2"}.items() for x in ("--set", f"{k}={v}")],
                "--grid", "seed=0,1", "--out", out, "--no-progress"]
        res = cli(*args, "--scheduler", address)
        assert res.returncode == 0, res.stderr
        assert f"scheduler {address}" in res.stdout and "MALLOC_TRIM_THRESHOLD_" not in res.stdout
        res = cli(*args, "--resume", env={"DASK_SCHEDULER_ADDRESS": address})   # the same cluster, named by env
        assert res.returncode == 0, res.stderr
        assert f"scheduler {address}" in res.stdout and "(2 already done)" in res.stdout
        assert [r["status"] for r in read_csv(out / "results.csv")] == ["ok", "ok"]
        pids = {int(line.split(" pid ")[1].split(":")[0]) for name in ("seed=0", "seed=1")
                for line in (out / "logs" / f"{name}.log").read_text().splitlines() if line.startswith("== ")}
        assert pids <= {p.pid for p in psutil.Process(worker.pid).children(recursive=True)}  # ran in that worker
    finally:
        if worker is not None:
            _stop(worker)
        _stop(scheduler)
        log.close()


# ---- bench --sweep: the kernel benchmark, one task per group, one folder per machine -------------

def test_bench_sweep_times_every_group_and_writes_one_folder_per_machine(client, tmp_path):
    from bench.cases import all_cases
    from net.sweep_bench import run

    folders = run(client, "tiny", out=tmp_path, progress=False, log=lambda s: None)
    assert len(folders) == 1 and folders[0].parent == tmp_path        # both workers are on this machine
    result = json.loads((folders[0] / "results-tiny.json").read_text())
    expected = {(c.group, c.impl) for c in all_cases("tiny")}
    assert {(r["group"], r["impl"]) for r in result["rows"]} == expected
    assert all(r["min_s"] > 0 and r["rounds"] >= 3 for r in result["rows"])
    assert result["machine"]["cores"] == os.cpu_count() and result["peaks"]["peak_gflops"] > 0
    assert (folders[0] / "results-tiny.md").read_text().startswith("# Kernel benchmarks (tiny sizes)")


def test_bench_sweep_is_for_the_kernel_suite(tmp_path):
    res = cli("bench", "persample", "--sweep", cwd=ROOT)
    assert res.returncode == 2 and "--sweep runs the kernel suite" in res.stderr
    res = cli("bench", "--scheduler", "tcp://127.0.0.1:1", cwd=ROOT)
    assert res.returncode == 2 and "add --sweep" in res.stderr


def test_the_ready_made_sweep_files_parse_into_valid_runs():
    from net.sweep import config_for

    files = sorted((ROOT / "docs" / "sweeps").glob("*.*ml")) + sorted((ROOT / "docs" / "sweeps").glob("*.json"))
    assert {f.name for f in files} >= {"lr-activation-fashion-mnist.toml", "init-depth-fashion-mnist.toml"}
    for f in files:
        for run in runs(spec_from(f)):
            config_for(run.argv)                      # every combination is a valid `train` command


def test_workers_with_dasks_malloc_trim_threshold_get_a_warning_naming_the_fix():
    class Client:
        def run(self, fn, *args):
            return {"tcp://a": "65536", "tcp://b": None}

    warning = slow_malloc_warning(Client())
    assert "MALLOC_TRIM_THRESHOLD_=65536" in warning and "MALLOC_TRIM_THRESHOLD_: null" in warning


def test_layer_and_schedule_options_reach_the_runs_config():
    """A sweep's options mean what they mean on the command line: --dropout, --batchnorm (a boolean
    flag, like --shuffle) and --schedule were dropped before the runs' configs were built with the
    train command's own function (the grid gave runs without dropout or a schedule)."""
    from net.sweep import Spec, config_for, runs

    spec = Spec(train={"dataset": "spiral", "batch_size": "16", "epochs": "2"},
                grid={"dropout": ["0.2"], "batchnorm": ["true", "false"], "schedule": ["cosine"]})
    made = [config_for(run.argv) for run in runs(spec)]
    assert [(c.dropout, c.batchnorm, c.schedule) for c in made] == [(0.2, True, "cosine"), (0.2, False, "cosine")]
