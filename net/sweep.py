"""Sweeps: a grid of training runs on Dask distributed (``python -m net sweep``, the ``sweep`` extra).

A sweep is fixed ``train`` options crossed with lists of values::

    [train]                      # any `python -m net train` option, named as in config.json
    dataset = "spiral"
    epochs = 20
    [grid]                       # every combination becomes one run
    lr = [0.01, 0.05]
    seed = [0, 1, 2]

Sweep folder layout::

    sweep.json        the sweep's fixed options and grid (``--resume`` checks it is unchanged)
    runs/<name>/      one ordinary run folder per combination, exactly what ``python -m net train``
                      writes with those options; <name> is e.g. ``lr=0.01,seed=0``
    failed/<name>.txt one line: the run's options are bad (as `train` says it); no run folder
    errors/<name>.txt one line: the run stopped on an error outside training (a missing data set,
                      its worker lost too often, ...); ``--resume`` tries it again
    logs/<name>.log   the run's epoch lines, one block per attempt (a retry says where it resumed)
    results.csv       one row per run (rewritten atomically after every finished run)
    summary.png       test accuracy against each swept option

Each run is one Dask task that calls :func:`net.runs.train` exactly as ``python -m net train``
does, after parsing its options with the same parser, so a bad value fails with the same
message and a good one gives the same weights bit for bit -- as ``train`` on one BLAS thread:
a run that does not set ``threads`` gets one BLAS thread (mini-batch products split between
threads round differently; per-sample training already runs on one thread and matches any
``train``).  A task whose worker dies is rescheduled by Dask (up to
``distributed.scheduler.allowed-failures`` times) and continues from the run's last checkpoint.
Run folders live on the filesystem the workers write to: with a cluster of several machines,
``--out`` must be a folder every worker and the driver share.
"""
from __future__ import annotations

import argparse
import csv
import functools
import io as _io
import itertools
import json
import math
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write

#: ``python -m net train`` options a sweep may not set: the sweep decides them per run.
NOT_SWEEPABLE = {"out": "the sweep puts every run in SWEEP_DIR/runs/<name>",
                 "resume": "use `sweep --resume`", "no_progress": "a sweep shows one bar for all runs"}
RESULT_COLUMNS = ("status", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "seconds",
                  "samples_per_s", "error")
#: Worker environment on this machine: one thread for Numba and every BLAS, so runs do not fight for cores.
ONE_THREAD = {name: "1" for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")}


class SweepError(ValueError):
    """A sweep that cannot start (bad file, unknown option, an existing sweep folder): one line, exit 2."""


# ---- the grid --------------------------------------------------------------------------------

@dataclass
class Spec:
    """Fixed options and the grid, every value as the text the command line would take."""

    train: dict
    grid: dict

    def to_json(self) -> dict:
        return {"train": self.train, "grid": self.grid}


@dataclass
class Run:
    """One combination: its folder name, the swept values and the ``train`` command line."""

    name: str
    values: dict
    argv: list


@functools.lru_cache(maxsize=1)
def _train_actions() -> dict:
    """``dest -> argparse action`` of every ``python -m net train`` option."""
    from .cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {a.dest: a for a in sub.choices["train"]._actions if a.option_strings and a.dest != "help"}


def _train_options() -> dict:
    """``dest -> option string`` of every ``python -m net train`` option."""
    return {dest: a.option_strings[0] for dest, a in _train_actions().items()}


def _key(raw: str, where: str) -> str:
    key = str(raw).strip().replace("-", "_")
    options = _train_options()
    if key in NOT_SWEEPABLE:
        raise SweepError(f"{where}: '{raw}' cannot be set in a sweep: {NOT_SWEEPABLE[key]}")
    if key not in options:
        valid = ", ".join(k for k in options if k not in NOT_SWEEPABLE)
        raise SweepError(f"{where}: unknown option '{raw}'; `python -m net train` options are: {valid}")
    return key


def _text(value, key: str) -> str | None:
    """A TOML/JSON value as command-line text: ``[2, 64, 3]`` -> ``2-64-3``, ``true`` -> ``true``;
    ``None`` (JSON null, as config.json writes defaults) -> the option left out."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "full" if key == "batch_size" else None   # config.json's batch_size null is the full batch
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value)
    return str(value)


def spec_from(config=None, sets=(), grids=()) -> Spec:
    """The sweep from a TOML/JSON file and/or ``--set KEY=VALUE`` / ``--grid KEY=V1,V2`` (which win)."""
    train, grid = {}, {}
    if config is not None:
        raw = _read_config(Path(config))
        if not isinstance(raw, dict):
            raise SweepError(f"{config}: expected an object with \"train\" and \"grid\", got {type(raw).__name__}")
        unknown = set(raw) - {"train", "grid"}
        if unknown:
            raise SweepError(f"{config}: unknown table(s) {', '.join(sorted(unknown))}; a sweep file has [train] "
                             "(fixed options) and [grid] (lists of values to cross)")
        for k, v in (raw.get("train") or {}).items():
            key = _key(k, f"{config} [train]")
            if _text(v, key) is not None:
                train[key] = _text(v, key)
        for k, v in (raw.get("grid") or {}).items():
            key = _key(k, f"{config} [grid]")
            values = [_text(x, key) for x in (v if isinstance(v, list) else [v])]
            if not values or None in values:
                raise SweepError(f"{config} [grid]: '{k}' needs a list of values (no nulls), got {v!r}")
            grid[key] = values
    for item in sets:
        k, v = _split(item, "--set", "OPTION=VALUE, e.g. --set dataset=spiral")
        train[_key(k, "--set")] = v
        grid.pop(_key(k, "--set"), None)
    for item in grids:
        k, v = _split(item, "--grid", "OPTION=V1,V2,..., e.g. --grid lr=0.01,0.05")
        values = [x.strip() for x in v.split(",") if x.strip()]
        if not values:
            raise SweepError(f"--grid {item}: no values")
        grid[_key(k, "--grid")] = values
        train.pop(_key(k, "--grid"), None)
    for k in grid:
        train.pop(k, None)
    return Spec(train, grid)


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise SweepError(f"{path}: no such sweep file")
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text())
        import tomllib

        return tomllib.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:   # tomllib.TOMLDecodeError and JSONDecodeError are ValueErrors
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise SweepError(f"{path}: not valid {kind}: {exc}") from None


def _split(item: str, flag: str, expected: str) -> tuple[str, str]:
    if "=" not in item:
        raise SweepError(f"{flag} {item}: expected {expected}")
    k, v = item.split("=", 1)
    return k.strip(), v.strip()


def _argv(options: dict) -> list[str]:
    """``train`` command-line arguments for ``{dest: text}``."""
    actions = _train_actions()
    argv = []
    for key, text in options.items():
        flag = actions[key].option_strings[0]
        if isinstance(actions[key], argparse.BooleanOptionalAction):      # --shuffle, --batchnorm
            lowered = text.lower()
            if lowered not in ("true", "false"):
                argv.append(f"{flag}={text}")         # fails in the run, as the command line would
            else:
                argv.append(flag if lowered == "true" else "--no-" + flag[2:])
        else:
            argv += [flag, text]
    return argv


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


def runs(spec: Spec) -> list[Run]:
    """Every combination of the grid, in the grid's order (the last option varies fastest)."""
    keys = list(spec.grid)
    out, names = [], {}
    for combo in itertools.product(*(spec.grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        name = ",".join(f"{k}={_safe(v)}" for k, v in values.items()) or "run"
        if name in names:
            raise SweepError(f"two runs would share the folder name {name!r} ({names[name]} and {values}); "
                             "make the grid's values distinct")
        names[name] = values
        out.append(Run(name, values, ["train", *_argv({**spec.train, **values}), "--no-progress"]))
    return out


def config_for(argv: list[str]):
    """The :class:`~net.runs.RunConfig` ``python -m net train ARGV`` would train (raises its usage errors)."""
    from .cli import build_parser, new_run_config

    args = build_parser().parse_args(argv)
    return new_run_config(args)


# ---- one run: the Dask task ------------------------------------------------------------------

def status_of(run_dir: Path) -> str:
    """``ok`` (finished), ``failed``, ``running`` (started, unfinished) or ``pending`` (no folder yet)."""
    try:
        record = json.loads((run_dir / "history.json").read_text())
    except (OSError, ValueError):
        return "running" if (run_dir / "config.json").is_file() else "pending"
    if record.get("status") == "finished" and (run_dir / "model.npz").is_file():
        return "ok"
    return "failed" if record.get("status") == "failed" else "running"


def run_one(sweep_dir: str, name: str, values: dict, argv: list[str]) -> dict:
    """Train (or continue, or just report) one run of a sweep; return its results row.

    Never raises for a failing run: a bad option or a divergence becomes a ``failed`` row.
    """
    from .train import TrainingDivergedError

    sweep_dir = Path(sweep_dir)
    run_dir = sweep_dir / "runs" / name
    status = status_of(run_dir)
    if status == "failed" or status == "ok" and not _figures_missing(run_dir):   # e.g. a retry after it finished
        return result_row(sweep_dir, name, values)   # (a diverged run's history.json says so)
    log_path = sweep_dir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for kind in ("failed", "errors"):
        (sweep_dir / kind / f"{name}.txt").unlink(missing_ok=True)
    with open(log_path, "a") as logf:
        def log(line: str) -> None:
            logf.write(f"{line}\n")
            logf.flush()

        log(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: python -m net {' '.join(argv)}")
        try:
            cfg = config_for(argv)
            resume = (run_dir / "checkpoint.npz").is_file()
            if resume:
                done = len(json.loads((run_dir / "history.json").read_text())["epochs"])
                log(f"resuming from the checkpoint after epoch {done} of {cfg.epochs}")
            from .runs import train
            from .threads import blas_threads

            # BLAS on one thread unless the run sets its own `threads` (a cluster's workers may
            # not have the environment a local sweep gives them)
            with blas_threads(1 if cfg.threads is None else None):
                train(cfg, run_dir, resume=resume, progress=False, log=log)
        except TrainingDivergedError as exc:          # history.json records it
            log(f"failed: training diverged: {exc}")
        except Exception as exc:
            from .cli import UsageError

            if isinstance(exc, UsageError):      # one line, as `python -m net train` prints it
                message, kind = str(exc), "failed"
            else:
                message, kind = f"{type(exc).__name__}: {exc}", "errors"
                log(traceback.format_exc())
            log(f"failed: {message}")
            _record_failure(sweep_dir, kind, name, message)
    return result_row(sweep_dir, name, values)


def _figures_missing(run_dir: Path) -> bool:
    """A finished run whose worker died while drawing: ``train --resume`` with no epochs left redraws."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None and not all(
        (run_dir / name).is_file() for name in ("curves.png", "confusion.png"))


def _record_failure(sweep_dir: Path, kind: str, name: str, message: str) -> None:
    with atomic_write(Path(sweep_dir) / kind / f"{name}.txt", "w") as f:
        f.write(" ".join(message.split()) + "\n")


def _to_run(sweep_dir: Path, row: dict) -> bool:
    """Whether a sweep (or ``--resume``) runs this one: not finished, not diverged, no bad option."""
    return row["status"] not in ("ok", "failed") or (sweep_dir / "errors" / f"{row['name']}.txt").is_file()


# ---- results ---------------------------------------------------------------------------------

def result_row(sweep_dir: Path, name: str, values: dict) -> dict:
    """The run's row of ``results.csv``, read from its folder."""
    sweep_dir = Path(sweep_dir)
    run_dir = sweep_dir / "runs" / name
    row = {"name": name, **values, **{c: None for c in RESULT_COLUMNS}}
    row["status"] = status_of(run_dir)
    for kind in ("failed", "errors"):
        path = sweep_dir / kind / f"{name}.txt"
        if path.is_file():
            row["status"], row["error"] = "failed", path.read_text().strip()
    try:
        record = json.loads((run_dir / "history.json").read_text())
    except (OSError, ValueError):
        return row
    epochs = record.get("epochs") or []
    if record.get("status") == "failed" and not row["error"]:
        row["error"] = record.get("message")
    if epochs:
        last = epochs[-1]
        for c in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"):
            row[c] = last.get(c)
        seconds = sum(e["seconds"] for e in epochs)
        row["seconds"] = seconds
        row["samples_per_s"] = sum(e["samples_per_s"] * e["seconds"] for e in epochs) / seconds if seconds else None
    return row


def write_results(sweep_dir: Path, rows: list[dict], swept: list[str]) -> Path:
    """``results.csv`` (atomically): ``name``, one column per swept option, then :data:`RESULT_COLUMNS`."""
    path = Path(sweep_dir) / "results.csv"
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["name", *swept, *RESULT_COLUMNS], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in writer.fieldnames})
    with atomic_write(path, "w") as f:
        f.write(buf.getvalue())
    return path


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def read_spec(sweep_dir) -> Spec:
    path = Path(sweep_dir) / "sweep.json"
    if not path.is_file():
        raise SweepError(f"{sweep_dir}: no sweep.json; pass a folder written by `python -m net sweep --out`")
    raw = json.loads(path.read_text())
    return Spec(raw["train"], raw["grid"])


def report(sweep_dir, *, log=print) -> list[dict]:
    """Rebuild ``results.csv`` and ``summary.png`` from the run folders; return the rows."""
    sweep_dir = Path(sweep_dir)
    spec = read_spec(sweep_dir)
    rows = [result_row(sweep_dir, r.name, r.values) for r in runs(spec)]
    _write_outputs(sweep_dir, spec, rows, log)
    return rows


def _write_outputs(sweep_dir: Path, spec: Spec, rows: list[dict], log) -> None:
    from .extras import MissingExtra

    written = [write_results(sweep_dir, rows, list(spec.grid))]
    try:
        written.append(summary_figure(rows, list(spec.grid), sweep_dir / "summary.png"))
    except MissingExtra as exc:
        log(f"no summary.png: {exc}")
    log("wrote " + ", ".join(str(p) for p in written))


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def summary_figure(rows: list[dict], swept: list[str], path) -> Path:
    """One panel per swept option: each finished run's test accuracy at its value; a line per value
    of another swept option (the first with at most 6 values, seeds last) through the means over
    the rest, else one line through the means.  Failed runs are crosses at 0."""
    from .plot import _pyplot, _save

    plt = _pyplot()
    panels = swept or ["name"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8), squeeze=False, sharey=True)
    ok = [r for r in rows if r["status"] == "ok" and r.get("test_acc") is not None]
    for ax, key in zip(axes[0], panels):
        order = _ordered(r[key] for r in rows)
        numeric = all(_number(v) is not None for v in order)
        pos = {v: (_number(v) if numeric else i) for i, v in enumerate(order)}
        others = sorted((k for k in swept if k != key and len(set(r[k] for r in rows)) <= 6),
                        key=lambda k: k == "seed")
        by = others[0] if others else None
        series = _ordered(r[by] for r in rows) if by else [None]
        for i, value in enumerate(series):
            mine = [r for r in ok if by is None or r[by] == value]
            label = f"{by}={value}" if by else "test accuracy"
            colour = f"C{i % 10}"
            if mine:
                ax.scatter([pos[r[key]] for r in mine], [100 * r["test_acc"] for r in mine], s=16, color=colour,
                           alpha=0.5)
            means = []
            for v in order:
                accs = [100 * r["test_acc"] for r in mine if r[key] == v]
                if accs:
                    means.append((pos[v], sum(accs) / len(accs)))
            if means:
                ax.plot(*zip(*means), "-o", color=colour, lw=1.4, ms=3, label=label)
        failed = [pos[r[key]] for r in rows if r["status"] == "failed"]
        if failed:
            ax.scatter(failed, [0] * len(failed), marker="x", color="C3", label="failed")
        values = [_number(v) for v in order] if numeric else []
        if numeric and len(order) > 1 and min(values) > 0 and max(values) / min(values) >= 20:
            ax.set_xscale("log")
        if not numeric:
            crowded = len(order) > 3 or max(map(len, order)) * len(order) > 30
            ax.set_xticks(range(len(order)), order, rotation=25 if crowded else 0, ha="right" if crowded else "center")
            ax.set_xlim(-0.5, len(order) - 0.5)
        elif len(order) <= 8:
            ax.set_xticks([pos[v] for v in order], order)
            ax.minorticks_off()
        ax.set(xlabel=key, title=f"test accuracy by {key}")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.suptitle(f"{len(ok)} of {len(rows)} runs finished; dots: runs, lines: means", fontsize=9, y=1.02)
    return _save(fig, path)


def _ordered(values) -> list:
    """Distinct values in first-seen order, or numerically sorted when all are numbers."""
    out = list(dict.fromkeys(values))
    return sorted(out, key=_number) if all(_number(v) is not None for v in out) else out


# ---- the sweep -------------------------------------------------------------------------------

def start_client(scheduler: str | None = None, workers: int | None = None):
    """A Dask client: of the cluster at ``scheduler`` (or ``$DASK_SCHEDULER_ADDRESS``), else of a
    ``LocalCluster`` with ``workers`` (default: cores) single-threaded worker processes."""
    from .extras import require

    distributed = require("distributed", "sweep", "sweeps on Dask")
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if scheduler:
        try:
            return distributed.Client(scheduler)
        except (OSError, ValueError) as exc:               # unreachable (TimeoutError is an OSError), malformed
            raise SweepError(f"cannot reach the Dask scheduler {scheduler}: {' '.join(str(exc).split())}") from None
    import logging

    import dask

    # silence_logs: the sweep reports every run's failure itself; what the workers would log is shutdown
    # chatter (heartbeat tracebacks when an interrupted driver takes the scheduler down first)
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):  # see SLOW_MALLOC
        cluster = distributed.LocalCluster(n_workers=workers or _cores(), threads_per_worker=1, processes=True,
                                           env=dict(ONE_THREAD), silence_logs=logging.CRITICAL)
    return distributed.Client(cluster)


#: Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes glibc's
#: mmap threshold at 128 KiB: every larger array becomes a fresh mmap with its page faults (ReLU on
#: a 1024x512 float32 batch: 815 us instead of 45 us on the 2-core AMD machine).  The local cluster
#: drops it; workers of an existing cluster are checked and a warning says how to drop it there.
SLOW_MALLOC = ("workers run with MALLOC_TRIM_THRESHOLD_={value} (Dask's nanny default), which makes every "
               "array above 128 KiB a fresh mmap: timings and samples/s come out low. Start the workers with "
               "this in a Dask config file (e.g. ~/.config/dask/scratchnet.yaml): distributed: nanny: "
               "pre-spawn-environ: MALLOC_TRIM_THRESHOLD_: null")


def slow_malloc_warning(client) -> str | None:
    """:data:`SLOW_MALLOC` if any worker of ``client`` has ``MALLOC_TRIM_THRESHOLD_`` set, else ``None``."""
    values = {v for v in client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values() if v is not None}
    return SLOW_MALLOC.format(value=", ".join(sorted(values))) if values else None


def _cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        return os.cpu_count() or 1


def run_sweep(spec: Spec, out, *, client=None, scheduler=None, workers=None, resume=False, progress=True,
              log=print) -> list[dict]:
    """Run every combination of ``spec`` into ``out/runs/<name>``; return the results rows.

    With ``resume`` the runs that finished, diverged or have bad options are kept; the others
    (unfinished, or stopped by an error outside training) continue from their last checkpoint.
    ``client``: a ``distributed.Client`` to use (else one is started and closed here, see
    :func:`start_client`).
    """
    from .extras import require

    require("distributed", "sweep", "sweeps on Dask")
    out = Path(out)
    plan = runs(spec)
    if not plan:
        raise SweepError("the grid has no combinations")
    _check_folder(out, spec, resume)
    own = client is None
    if own:
        client = start_client(scheduler, workers)
    try:
        with atomic_write(out / "sweep.json", "w") as f:     # once a cluster is there to run it
            json.dump(spec.to_json(), f, indent=2)
        return _drive(client, out, spec, plan, progress, log)
    finally:
        if own:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


def _check_folder(out: Path, spec: Spec, resume: bool) -> None:
    if resume:
        old = read_spec(out)
        if old.to_json() != spec.to_json():
            raise SweepError(f"--resume {out}: the sweep there has other options (its sweep.json: "
                             f"{json.dumps(old.to_json())}); resume it with the same file and flags, or pick "
                             "another --out")
    elif (out / "sweep.json").exists() or any((out / "runs").glob("*")):
        raise SweepError(f"--out {out} already holds a sweep; add --resume to continue it, or pick another --out")


def _drive(client, out: Path, spec: Spec, plan: list[Run], progress: bool, log) -> list[dict]:
    from distributed import KilledWorker  # noqa: F401  -- the extra is there (checked by the caller)

    rows = {r.name: result_row(out, r.name, r.values) for r in plan}
    todo = [r for r in plan if _to_run(out, rows[r.name])]
    log(f"sweep: {len(plan)} runs in {out / 'runs'} ({len(plan) - len(todo)} already done); "
        f"scheduler {client.scheduler.address}, {len(client.scheduler_info().get('workers', {}))} workers")
    link = getattr(client, "dashboard_link", None)
    if link:
        log(f"Dask dashboard: {link}")
    warning = slow_malloc_warning(client)
    if warning:
        log(f"warning: {warning}")
    swept = list(spec.grid)
    write_results(out, [rows[r.name] for r in plan], swept)
    futures = {client.submit(run_one, str(out.resolve()), r.name, r.values, r.argv, key=f"run {r.name} "
                             f"{os.urandom(4).hex()}", pure=False, retries=1): r for r in todo}
    bar = _bar(len(plan), len(plan) - len(todo)) if progress else None
    pending = dict(futures)
    shown, started = time.monotonic(), time.time()
    try:
        while pending:
            finished = [f for f in pending if f.done()]
            for f in finished:
                r = pending.pop(f)
                if f.status == "finished":
                    rows[r.name] = f.result()
                else:                                  # e.g. KilledWorker after too many worker deaths
                    exc = f.exception() if f.status == "error" else f.status
                    message = " ".join(f"{type(exc).__name__}: {exc}".split())
                    _record_failure(out, "errors", r.name, message)
                    rows[r.name] = result_row(out, r.name, r.values)
                if rows[r.name]["status"] == "failed":
                    log(f"run {r.name} failed: {rows[r.name]['error']}")
                write_results(out, [rows[p.name] for p in plan], swept)
            running = sum(_started_since(out, r.name, started) for r in pending.values())
            failed = sum(row["status"] == "failed" for row in rows.values())
            if bar is not None:
                bar.set_postfix_str(f"running {running}, failed {failed}", refresh=False)
                bar.update(len(finished))
                if time.monotonic() - shown > 2:    # the counts change between finished runs too
                    bar.refresh()
                    shown = time.monotonic()
            if not finished:
                time.sleep(0.25)
    finally:
        if bar is not None:
            bar.close()
        for f in pending:
            f.cancel()
        if pending:                                    # interrupted: what the folders say now
            for r in pending.values():
                rows[r.name] = result_row(out, r.name, r.values)
            write_results(out, [rows[p.name] for p in plan], swept)
    ordered = [rows[r.name] for r in plan]
    _write_outputs(out, spec, ordered, log)
    ok = sum(r["status"] == "ok" for r in ordered)
    log(f"sweep: {ok} of {len(ordered)} runs finished, {len(ordered) - ok} failed")
    return ordered


def _started_since(out: Path, name: str, since: float) -> bool:
    """Whether an attempt at run ``name`` started after ``since`` (its first act is to write its log)."""
    try:
        return (out / "logs" / f"{name}.log").stat().st_mtime >= since - 1
    except OSError:
        return False


def _bar(total: int, done: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc="sweep", unit="run", file=sys.stderr, mininterval=0.5)


def cmd_sweep(args) -> int:
    """``python -m net sweep``: see :mod:`net.sweep` and ``python -m net sweep --help``."""
    from .cli import UsageError

    try:
        if args.report:
            if args.config or args.set or args.grid or args.out or args.resume:
                raise SweepError("--report SWEEP_DIR rebuilds results.csv and summary.png from the run folders; "
                                 "it takes no CONFIG, --set, --grid, --out or --resume")
            rows = report(args.report)
            ok = sum(r["status"] == "ok" for r in rows)
            print(f"{args.report}: {ok} of {len(rows)} runs finished")
            return 0
        if args.out is None:
            raise SweepError("--out SWEEP_DIR is required (the folder that gets runs/, results.csv, summary.png)")
        if args.config is None and not (args.set or args.grid):
            raise SweepError("give a sweep file (TOML or JSON with [train] and [grid]) or --set/--grid options")
        if args.workers and (args.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")):
            raise SweepError("--workers sizes the local cluster; an existing cluster (--scheduler or "
                             "$DASK_SCHEDULER_ADDRESS) has the workers it was started with")
        spec = spec_from(args.config, args.set, args.grid)
        rows = run_sweep(spec, args.out, scheduler=args.scheduler, workers=args.workers, resume=args.resume,
                         progress=not args.no_progress)
    except SweepError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        print(f"{args.prog} sweep: interrupted; the finished runs are kept, the others continue from their last "
              f"checkpoints with the same command and --resume", file=sys.stderr)
        return 130
    return 0 if all(r["status"] == "ok" for r in rows) else 1
