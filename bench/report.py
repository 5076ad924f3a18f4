"""Run the kernel benchmarks and write results people can read.

    python -m net bench kernels [--quick]         # or: python -m bench.report [--quick]
    python -m net bench kernels --compare OLD.json NEW.json

Writes into ``./bench-results/<machine>/`` (or ``--out DIR``; the committed
``bench/results/<machine>/`` only with ``--update-baseline``, see ``bench.output``):
``results.json`` (every timing with machine info and measured peaks), ``results.md`` (time, GFLOP/s, GB/s, speed-up vs the
baseline in each group, and the goals as measured ratios), ``matmul_gflops.png``
and ``roofline.png``.  ``--quick`` (sizes up to 1,024 rows / 256x256 matmuls)
finishes in well under two minutes; ``--compare`` flags groups that got slower
beyond the noise of both runs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import machine, output
from net.extras import MissingExtra, require

HERE = Path(__file__).resolve().parent
SUITE = HERE / "test_kernels.py"
REGRESSION_FLOOR = 0.10   # never call less than a 10% slow-down a regression


def run_suite(size_set: str, max_time: float) -> list[dict]:
    """Run the pytest-benchmark suite in a subprocess; return its benchmark records."""
    with tempfile.TemporaryDirectory() as tmp:  # also the working directory: nothing lands in the package
        out = Path(tmp) / "raw.json"
        cmd = [sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider", "--benchmark-enable",
               "--benchmark-only", f"--benchmark-json={out}", f"--benchmark-max-time={max_time}",
               "--benchmark-min-rounds=3", "--benchmark-warmup=off", "--rootdir", str(HERE.parent)]
        env = dict(os.environ, SCRATCHNET_BENCH_SIZES=size_set, PYTHONDONTWRITEBYTECODE="1")
        res = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if res.returncode != 0 or not out.exists():
            raise RuntimeError(f"benchmark suite failed (exit {res.returncode}):\n"
                               f"{res.stdout[-3000:]}\n{res.stderr[-2000:]}")
        return json.loads(out.read_text())["benchmarks"]


def rows_from(raw: list[dict]) -> list[dict]:
    rows = []
    for b in raw:
        info, stats = b["extra_info"], b["stats"]
        t = stats["min"]
        rows.append({"group": b["group"], "impl": info["impl"], "op": info.get("op"), "dtype": info["dtype"],
                     "sizes": info["sizes"], "baseline": info["baseline"], "min_s": t, "median_s": stats["median"],
                     "stddev_s": stats["stddev"], "rounds": stats["rounds"], "flops": info["flops"],
                     "bytes": info["bytes"], "gflops": info["flops"] / t / 1e9, "gbs": info["bytes"] / t / 1e9,
                     "intensity": info["flops"] / info["bytes"] if info["bytes"] else None})
    base = {(r["group"], r["impl"]): r["min_s"] for r in rows}
    for r in rows:
        ref = base.get((r["group"], r["baseline"]))
        r["speedup_vs_baseline"] = ref / r["min_s"] if ref else None
    return rows


def _find(rows, op, impl, dtype, **sizes):
    for r in rows:
        if r["op"] == op and r["impl"] == impl and r["dtype"] == dtype and all(
                r["sizes"].get(k) == v for k, v in sizes.items()):
            return r
    return None


def goals(rows: list[dict]) -> list[str]:
    """The performance goals as ratios measured in this run ('not measured' if a size was skipped).

    Every Numba kernel slower than its NumPy twin at some size and dtype is listed as a
    missed goal: the compiled backend exists to be the fast one.
    """
    lines = []
    for dtype in ("float32", "float64"):
        for n in (256, 512, 1024, 2048):
            mine = _find(rows, "matmul", "numba-packed", dtype, N=n)
            blas = _find(rows, "matmul", "numpy-blas-1thread", dtype, N=n)
            if mine and blas:
                ratio = mine["gflops"] / blas["gflops"]
                lines.append(f"- Numba `matmul` (packed, cache-blocked) at n={n}, {dtype}: {mine['gflops']:.1f} "
                             f"GFLOP/s = **{ratio:.0%}** of 1-thread BLAS ({blas['gflops']:.1f}) -- goal >= 60%: "
                             f"{'met' if ratio >= 0.6 else 'not met'}")
            else:
                lines.append(f"- Numba `matmul` vs BLAS at n={n}, {dtype}: not measured at this size set")
    for dtype in ("float32", "float64"):
        jvp = _find(rows, "softmax_backward", "numba", dtype, B=60000, K=10)
        jac = _find(rows, "softmax_backward", "explicit-jacobian", dtype, B=60000, K=10)
        if jvp and jac:
            ratio = jac["min_s"] / jvp["min_s"]
            lines.append(f"- `softmax_backward` (Numba) vs explicit-Jacobian einsum, B=60000, K=10, {dtype}: "
                         f"**{ratio:,.0f}x** faster -- goal >= 1000x: {'met' if ratio >= 1000 else 'not met'}")
        for op, sizes in (("softmax", {"B": 60000, "K": 10}), ("softmax", {"B": 1024, "K": 512}),
                          ("sigmoid_forward", {"B": 60000, "I": 10}), ("sigmoid_forward", {"B": 1024, "I": 512})):
            mine, theirs = _find(rows, op, "numba", dtype, **sizes), _find(rows, op, "numpy", dtype, **sizes)
            label = "x".join(str(v) for v in sizes.values())
            if mine and theirs:
                ratio = theirs["min_s"] / mine["min_s"]
                lines.append(f"- Numba `{op}` vs NumPy, {label}, {dtype}: **{ratio:.1f}x** -- goal >= 2x: "
                             f"{'met' if ratio >= 2 else 'not met'}")
            else:
                lines.append(f"- `{op}` at {label}, {dtype}: not measured at this size set (run without --quick)")
    slower = [r for r in rows if r["impl"] == "numba" and r["baseline"] == "numpy"
              and r["speedup_vs_baseline"] is not None and r["speedup_vs_baseline"] < 1.0]
    if slower:
        lines.append(f"- **Numba slower than NumPy** (goal: >= 1.0x everywhere), {len(slower)} of "
                     f"{sum(r['impl'] == 'numba' and r['baseline'] == 'numpy' for r in rows)} timings -- not met:")
        lines += [f"  - {r['group']}: {r['speedup_vs_baseline']:.2f}x" for r in slower]
    else:
        lines.append("- Numba >= NumPy for every kernel, size and dtype measured -- met")
    return lines


def _fmt_time(s: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def markdown(result: dict) -> str:
    m, p = result["machine"], result["peaks"]
    blas = ", ".join(f"{b['library']} {b['version']} ({b['architecture']})" for b in m["blas"]) or "unknown"
    lines = [f"# Kernel benchmarks ({result['size_set']} sizes)", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, NumPy {m['numpy']} with {blas} "
             f"limited to 1 thread, Numba {m['numba']}. Measured peaks (1 core): {p['peak_gflops']:.1f} GFLOP/s "
             f"({p['peak_gflops_how']}), {p['bandwidth_gbs']:.1f} GB/s ({p['bandwidth_how']}).", "",
             "## Goals", "", *goals(result["rows"]), "",
             "## All timings", "",
             "Minimum over rounds. GFLOP/s and GB/s use nominal operation counts and the bytes of every input "
             "and output once; speed-up is against the group's baseline (NumPy, or 1-thread BLAS for matmul).", "",
             "| group | impl | time | GFLOP/s | GB/s | speed-up |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        sp = f"{r['speedup_vs_baseline']:.2f}x" if r["speedup_vs_baseline"] else ""
        lines.append(f"| {r['group']} | {r['impl']} | {_fmt_time(r['min_s'])} | {r['gflops']:.2f} | {r['gbs']:.2f} | "
                     f"{sp} |")
    return "\n".join(lines) + "\n"


def charts(result: dict, out: Path) -> list[Path]:
    from net.plot import _pyplot, _save

    plt = _pyplot()
    rows = result["rows"]
    written = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, dtype in zip(axes, ("float32", "float64")):
        for impl in ("numpy-blas-1thread", "numba-packed", "numba-ijk-naive", "pure-python"):
            pts = sorted((r["sizes"]["N"], r["gflops"]) for r in rows
                         if r["op"] == "matmul" and r["impl"] == impl and r["dtype"] == dtype)
            if pts:
                ax.plot(*zip(*pts), "-o", label=impl)
        ax.set(xscale="log", yscale="log", xlabel="n (n x n matrices)", title=f"matmul, {dtype}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("GFLOP/s (1 core)")
    written.append(_save(fig, out / "matmul_gflops.png"))

    peak, bw = result["peaks"]["peak_gflops"], result["peaks"]["bandwidth_gbs"]
    fig, ax = plt.subplots(figsize=(10, 5.5))
    xs = np.logspace(-2, 3, 200)
    ax.plot(xs, np.minimum(peak, bw * xs), "k-", lw=2, label=f"roofline: {peak:.0f} GFLOP/s, {bw:.0f} GB/s")
    largest = {}
    for r in rows:
        if r["impl"] in ("numba", "numba-packed", "numba-fused") and r["dtype"] == "float32" and r["intensity"]:
            key = r["op"]
            if key not in largest or r["flops"] > largest[key]["flops"]:
                largest[key] = r
    # Kernels cluster at similar intensities, so names next to the points overlap: each point gets its own
    # colour and marker instead, named in a legend outside the axes (ordered by GFLOP/s, top first).
    colours, markers = plt.get_cmap("tab10").colors, "os^DvP*X<>"
    ordered = sorted(largest.items(), key=lambda item: -item[1]["gflops"])
    for k, (op, r) in enumerate(ordered):
        ax.scatter(r["intensity"], r["gflops"], s=45, color=colours[k % 10], marker=markers[(k // 10 + k) % 10],
                   edgecolors="black", linewidths=0.4, label=f"{op} ({r['gflops']:.1f})", zorder=3)
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/byte)", ylabel="GFLOP/s",
           title="Numba kernels (float32, largest size) on the measured single-core roofline")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0.0,
              title="kernel (GFLOP/s)", title_fontsize=8)
    written.append(_save(fig, out / "roofline.png"))
    return written


def compare(old_path, new_path) -> tuple[str, int]:
    """Markdown diff of two results files and the number of regressions beyond noise."""
    old, new = (json.loads(Path(p).read_text()) for p in (old_path, new_path))
    if old["machine"]["cpu"] != new["machine"]["cpu"] or old["machine"]["cores"] != new["machine"]["cores"]:
        warn = (f"WARNING: different machines ({old['machine']['cpu']}, {old['machine']['cores']} cores vs "
                f"{new['machine']['cpu']}, {new['machine']['cores']} cores): ratios mix hardware.\n\n")
    else:
        warn = ""
    before = {(r["group"], r["impl"]): r for r in old["rows"]}
    lines = ["| group | impl | old | new | new/old | verdict |", "|---|---|---|---|---|---|"]
    regressions = 0
    for r in new["rows"]:
        o = before.get((r["group"], r["impl"]))
        if o is None:
            continue
        ratio = r["min_s"] / o["min_s"]
        noise = max(REGRESSION_FLOOR, 2 * (o["stddev_s"] / o["median_s"] + r["stddev_s"] / r["median_s"]))
        verdict = "slower (regression)" if ratio > 1 + noise else "faster" if ratio < 1 / (1 + noise) else "same"
        regressions += verdict.startswith("slower")
        lines.append(f"| {r['group']} | {r['impl']} | {_fmt_time(o['min_s'])} | {_fmt_time(r['min_s'])} | "
                     f"{ratio:.2f} | {verdict} |")
    return warn + "\n".join(lines) + f"\n\n{regressions} regression(s) beyond noise.\n", regressions


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, well under two minutes")
    parser.add_argument("--sizes", choices=("full", "quick", "tiny"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="results folder (default: ./bench-results/<machine>)")
    parser.add_argument("--update-baseline", action="store_true",
                        help="write the committed baseline bench/results/<machine> of this checkout instead")
    parser.add_argument("--max-time", type=float, default=None, help="seconds per benchmark (pytest-benchmark)")
    parser.add_argument("--compare", nargs=2, metavar=("OLD_JSON", "NEW_JSON"))
    args = parser.parse_args(argv)
    if args.compare:
        text, regressions = compare(*args.compare)
        print(text)
        return 1 if regressions else 0
    try:
        require("pytest", "dev", "the kernel benchmarks")
        require("pytest_benchmark", "dev", "the kernel benchmarks")
        meta = machine.info()
        out = output.results_dir(machine.slug(meta), args.out, update_baseline=args.update_baseline)
    except (MissingExtra, output.OutputError) as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    size_set = args.sizes or ("quick" if args.quick else "full")
    max_time = args.max_time or {"full": 0.5, "quick": 0.1, "tiny": 0.005}[size_set]
    t0 = time.perf_counter()
    raw = run_suite(size_set, max_time)
    result = {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "size_set": size_set, "machine": meta,
              "peaks": machine.peaks(small=size_set == "tiny"), "rows": rows_from(raw)}
    name = "results.json" if size_set == "full" else f"results-{size_set}.json"
    md = markdown(result)
    written = [output.write_text(out, name, json.dumps(result, indent=1)),
               output.write_text(out, name.replace(".json", ".md"), md)]
    try:
        written += charts(result, out)
    except MissingExtra as exc:
        print(f"no charts written: {exc}", file=sys.stderr)
    print("\n".join(md.splitlines()[:12 + len(goals(result["rows"]))]))
    print(f"\n{len(result['rows'])} timings in {time.perf_counter() - t0:.0f} s; wrote "
          + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
