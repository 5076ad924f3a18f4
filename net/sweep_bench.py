"""``python -m net bench --sweep``: the kernel benchmark as Dask tasks, one per benchmark group,
on every machine of a cluster; one results folder per machine.

The groups are :func:`bench.cases.all_cases` (the registry's kernels, BLAS, pure Python, the
fused SGD epoch), the same cases ``python -m net bench kernels`` times.  Each machine runs its
groups one after another on one of its workers (never two at once, so they do not share the
machine's cores or memory bandwidth), with every BLAS on one thread.  A group's task times each
case in-process: one call to compile and warm up, then rounds of back-to-back calls (enough
calls per round to last ~0.2 ms) for about ``max_time`` seconds; the minimum, median and
spread over rounds go into the same ``results.json`` / ``results.md`` / charts that
``bench kernels`` writes (which times with pytest-benchmark in a subprocess instead).
Workers must run from a source checkout: ``bench/`` is not installed with the package.
"""
from __future__ import annotations

import functools
import os
import socket
import statistics
import sys
import time
from pathlib import Path

MAX_TIME = {"full": 0.5, "quick": 0.1, "tiny": 0.005}
ROUND_SECONDS = 2e-4          # calls per round: enough that one round lasts this long (timer resolution)


@functools.lru_cache(maxsize=1)
def _cases(size_set: str) -> dict:
    """``group -> [Case]`` (built once per worker process and size set)."""
    from bench.cases import all_cases

    groups: dict = {}
    for case in all_cases(size_set):
        groups.setdefault(case.group, []).append(case)
    return groups


def groups(size_set: str) -> list[str]:
    return list(_cases(size_set))


def machine(small: bool) -> dict:
    """This worker's machine: host name, ``bench.machine.info()`` and its measured peaks."""
    from bench import machine as m
    from net.threads import blas_threads

    with blas_threads(1):
        return {"host": socket.gethostname(), "machine": m.info(), "peaks": m.peaks(small=small),
                "malloc_trim_threshold": os.environ.get("MALLOC_TRIM_THRESHOLD_")}   # see net.sweep.SLOW_MALLOC


def time_group(size_set: str, group: str, max_time: float) -> list[dict]:
    """Time every case of ``group``; records shaped like pytest-benchmark's JSON (for ``rows_from``)."""
    from net.threads import blas_threads

    records = []
    with blas_threads(1):
        for case in _cases(size_set)[group]:
            case.fn(*case.args)                       # compile / warm up, untimed
            t0 = time.perf_counter()
            case.fn(*case.args)
            once = max(time.perf_counter() - t0, 1e-9)
            calls = max(1, int(ROUND_SECONDS / once))
            rounds = max(3, min(100_000, int(max_time / (once * calls))))
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                for _ in range(calls):
                    case.fn(*case.args)
                times.append((time.perf_counter() - t0) / calls)
            records.append({"group": case.group,
                            "extra_info": {"impl": case.impl, "dtype": case.dtype, "sizes": case.sizes,
                                           "flops": case.flops, "bytes": case.bytes, "baseline": case.baseline,
                                           **case.extra},
                            "stats": {"min": min(times), "median": statistics.median(times),
                                      "stddev": statistics.stdev(times), "rounds": rounds}})
    return records


def _one_worker_per_host(client) -> dict:
    """``host -> worker address`` (the first worker of each machine)."""
    hosts = client.run(socket.gethostname)
    chosen: dict = {}
    for addr in sorted(hosts):
        chosen.setdefault(hosts[addr], addr)
    return chosen


def run(client, size_set: str = "full", *, out=None, update_baseline: bool = False, max_time=None,
        progress: bool = True, log=print) -> list[Path]:
    """Benchmark every machine of ``client``'s cluster; return the results folders written (one per machine)."""
    import json

    from bench import machine as bench_machine
    from bench import output, report

    from .sweep import slow_malloc_warning

    max_time = max_time or MAX_TIME[size_set]
    hosts = _one_worker_per_host(client)
    if not hosts:
        raise RuntimeError("the Dask cluster has no workers")
    first = next(iter(hosts.values()))
    names = client.submit(groups, size_set, workers=[first], pure=False).result()
    log(f"bench --sweep: {len(names)} groups ({size_set} sizes) on {len(hosts)} machine(s): "
        + ", ".join(f"{h} ({a})" for h, a in hosts.items()))
    link = getattr(client, "dashboard_link", None)
    if link:
        log(f"Dask dashboard: {link}")
    warning = slow_malloc_warning(client)
    if warning:
        log(f"warning: {warning}")
    todo = {h: [("machine", size_set == "tiny")] + [("group", g) for g in names] for h in hosts}
    results = {h: {"records": []} for h in hosts}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(map(len, todo.values())), desc="bench", unit="task", file=sys.stderr)
    in_flight = {}
    t0 = time.perf_counter()
    try:
        while any(todo.values()) or in_flight:
            for h, addr in hosts.items():                 # one task at a time per machine
                if todo[h] and h not in in_flight.values():
                    kind, arg = todo[h].pop(0)
                    fn, args = (machine, (arg,)) if kind == "machine" else (time_group, (size_set, arg, max_time))
                    fut = client.submit(fn, *args, workers=[addr], allow_other_workers=False, pure=False,
                                        key=f"bench {kind} {arg} {h} {time.perf_counter_ns()}")
                    in_flight[fut] = h
            done = [f for f in in_flight if f.done()]
            for f in done:
                h = in_flight.pop(f)
                value = f.result()                            # a failing group stops the benchmark, loudly
                if isinstance(value, dict):
                    results[h].update(value)
                else:
                    results[h]["records"] += value
                if bar is not None:
                    bar.update()
            if not done:
                time.sleep(0.05)
    finally:
        if bar is not None:
            bar.close()
        for f in in_flight:
            f.cancel()
    slugs = [bench_machine.slug(r["machine"]) for r in results.values()]
    written = []
    for (h, r), slug in zip(results.items(), slugs):
        folder_name = slug if slugs.count(slug) == 1 else f"{slug}-{h}"
        folder = output.results_dir(folder_name, None if out is None else Path(out) / folder_name,
                                    update_baseline=update_baseline)
        result = {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "size_set": size_set, "machine": r["machine"],
                  "peaks": r["peaks"], "rows": report.rows_from(r["records"]), "host": h,
                  "malloc_trim_threshold": r["malloc_trim_threshold"],
                  "timed_by": "python -m net bench --sweep (in-process rounds on one Dask worker)"}
        name = "results.json" if size_set == "full" else f"results-{size_set}.json"
        output.write_text(folder, name, json.dumps(result, indent=1))
        output.write_text(folder, name.replace(".json", ".md"), report.markdown(result))
        try:
            report.charts(result, folder)
        except ImportError as exc:                            # MissingExtra: no matplotlib
            log(f"no charts written: {exc}")
        written.append(folder)
        log(f"{h}: {len(result['rows'])} timings -> {folder}")
    log(f"bench --sweep: {len(written)} machine(s) in {time.perf_counter() - t0:.0f} s")
    return written


def cmd_bench_sweep(args) -> int:
    """``python -m net bench --sweep [--quick] [--scheduler ADDRESS] [--out DIR]``."""
    from .cli import UsageError
    from .sweep import SweepError, start_client

    if args.suite != "kernels" or args.compare:
        raise UsageError("--sweep runs the kernel suite on a Dask cluster: `bench kernels --sweep`, without --compare")
    if args.out and args.update_baseline:
        raise UsageError("--out and --update-baseline exclude each other")
    size_set = "quick" if args.quick else "full"
    try:
        client = start_client(args.scheduler, workers=1)  # locally: one worker, so no two groups share the cores
    except SweepError as exc:
        raise UsageError(str(exc)) from None
    try:
        run(client, size_set, out=args.out, update_baseline=args.update_baseline)
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()
    return 0
