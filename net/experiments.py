"""The tutorials' studies, reproduced: each writes a PNG and a Markdown table into a folder.

    python -m net experiment init-depth | losses | persample | softmax-jacobian [--out DIR] [--quick]

* ``init-depth``: activations pushed through 152 layers of 512x512 weights: N(0, 1)
  explodes, N(0, 1)/sqrt(n) keeps std ~1 without ReLU but vanishes with it,
  Kaiming sqrt(2/n) keeps ReLU activations ~1.
* ``losses``: the same network trained with MSE on logits, MSE on softmax
  outputs, and cross-entropy; test accuracy per epoch side by side.
* ``persample``: linear-only (no activations, no biases) vs sigmoid
  784-512-512-10, one epoch of per-sample SGD on Fashion-MNIST (~73% vs ~83%).
* ``softmax-jacobian``: backward through softmax with the explicit (B, K, K)
  Jacobian vs the Jacobian-vector product, time and memory as K grows.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

EXPERIMENTS: dict[str, Callable] = {}


def _experiment(name):
    def register(fn):
        EXPERIMENTS[name] = fn
        return fn
    return register


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _write(out: Path, name: str, table: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.md"
    path.write_text(table + "\n")
    return path


# ---- init-depth ---------------------------------------------------------------------------

def init_depth_stds(depth: int = 152, width: int = 512, batch: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
    """Std of the activations after each of ``depth`` layers for four schemes (float64)."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((batch, width))
    schemes = {
        "N(0,1), linear": (1.0, False),
        "N(0,1)/sqrt(n), linear": (1 / np.sqrt(width), False),
        "N(0,1)/sqrt(n), ReLU": (1 / np.sqrt(width), True),
        "Kaiming sqrt(2/n), ReLU": (np.sqrt(2 / width), True),
    }
    stds = {}
    for name, (scale, relu) in schemes.items():
        x = x0.copy()
        out = np.empty(depth)
        wrng = np.random.default_rng(seed + 1)
        with np.errstate(over="ignore", invalid="ignore"):
            for d in range(depth):
                x = x @ (wrng.standard_normal((width, width)) * scale)
                if relu:
                    x = np.maximum(x, 0)
                out[d] = x.std()
        stds[name] = out
    return stds


#: Stds above this are off the init-depth chart: an exploding run is cut there and marked, so the
#: y-axis is not stretched to 1e153 (or inf) and the stable curves stay readable.
STD_CEILING = 1e6


@_experiment("init-depth")
def init_depth(out: Path, quick: bool = False) -> str:
    from .plot import _save

    depth = 152
    stds = init_depth_stds(depth, batch=64 if quick else 256)
    _save(init_depth_figure(stds), out / "init-depth.png")
    rows = [[name, f"{s[0]:.3g}", f"{s[9]:.3g}", f"{s[-1]:.3g}"] for name, s in stds.items()]
    return _table(["weights", "std after 1", "after 10", f"after {depth}"], rows)


def init_depth_figure(stds: dict[str, np.ndarray]):
    """Std per layer, log scale, one line style and marker per scheme; runs past STD_CEILING cut and marked."""
    from .plot import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    styles = [("-", "o"), ("--", "s"), ("-.", "^"), (":", "D")]
    depth = max(len(s) for s in stds.values())
    floor = STD_CEILING
    for k, (name, s) in enumerate(stds.items()):
        layers = np.arange(1, len(s) + 1)
        shown = np.where(np.isfinite(s) & (s > 0) & (s <= STD_CEILING), s, np.nan)
        label = name
        over = np.flatnonzero(~(np.isfinite(s) & (s <= STD_CEILING)))
        if over.size:
            first = over[0]
            shown[first:] = np.nan  # cut at the first layer off the chart
            overflow = np.flatnonzero(~np.isfinite(s))
            label += (f" (explodes: > {STD_CEILING:.0e} from layer {first + 1}"
                      + (f", overflow at {overflow[0] + 1})" if overflow.size else ")"))
        linestyle, marker = styles[k % len(styles)]
        line, = ax.plot(layers, shown, linestyle=linestyle, marker=marker, markevery=(3 * k, 15), markersize=5,
                        lw=1.6, label=label)
        if over.size:
            ax.plot([first + 1], [STD_CEILING], marker="^", markersize=10, color=line.get_color(), clip_on=False)
            ax.annotate(f"std {s[first]:.1e}" if np.isfinite(s[first]) else "std overflows", (first + 1, STD_CEILING),
                        xytext=(6, -12), textcoords="offset points", fontsize=8, color=line.get_color())
        if np.any(np.isfinite(shown)):
            floor = min(floor, np.nanmin(shown))
    ax.set_yscale("log")
    ax.set_ylim(max(floor / 10, 1e-300), STD_CEILING * 10)
    ax.set_xlim(0, depth + 1)
    ax.set(xlabel="layer", ylabel="activation std (log)", title=f"{depth} layers of 512x512 weights")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


# ---- losses -------------------------------------------------------------------------------

def _warm_up(make_model, loss, X, y, **fit_kwargs) -> None:
    """Train a throwaway copy on two samples (and predict), so the timed run compiles nothing:
    Numba's first calls would otherwise put compile time into the 'seconds' column
    (the losses study measured 58.8 s cold against 3.2 s warm)."""
    from . import fit, predict

    twin = make_model()
    fit(twin, loss, X[:2], y[:2], epochs=1, **fit_kwargs)
    predict(twin, X[:2])


@_experiment("losses")
def losses(out: Path, quick: bool = False) -> str:
    from . import CrossEntropyLoss, Linear, MSELoss, Sequential, Sigmoid, Softmax, fit, metrics, predict
    from .data import fashion_mnist
    from .plot import _pyplot, _save

    X, y, X_test, y_test = fashion_mnist()
    n, epochs = (2000, 3) if quick else (20000, 8)
    X, y = X[:n], y[:n]
    variants = {
        "MSE on logits": (False, MSELoss()),
        "MSE on softmax outputs": (True, MSELoss()),
        "cross-entropy": (False, CrossEntropyLoss()),
    }
    curves, rows = {}, []
    for name, (softmax, loss) in variants.items():
        def make(rng=None, softmax=softmax):
            rng = np.random.default_rng(0) if rng is None else rng
            return Sequential([Linear(784, 128, rng=rng), Sigmoid(), Linear(128, 10, rng=rng)]
                              + ([Softmax()] if softmax else []))

        _warm_up(make, loss, X, y, batch_size=32, lr=0.5, rng=0)
        rng = np.random.default_rng(0)
        model = make(rng)
        acc = []
        t0 = time.perf_counter()
        for _ in range(epochs):
            fit(model, loss, X, y, batch_size=32, epochs=1, lr=0.5, rng=rng)
            acc.append(metrics.accuracy(predict(model, X_test), y_test))
        curves[name] = acc
        rows.append([name, f"{100 * acc[0]:.1f}%", f"{100 * acc[-1]:.1f}%", f"{time.perf_counter() - t0:.1f}"])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, acc in curves.items():
        ax.plot(range(1, epochs + 1), [100 * a for a in acc], "-o", label=name)
    ax.set(xlabel="epoch", ylabel="test accuracy (%)",
           title=f"784-128-10 sigmoid, {n} Fashion-MNIST samples, batch 32, lr 0.5")
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, out / "losses.png")
    return _table(["loss", "test acc after epoch 1", f"after epoch {epochs}", "seconds (compiling excluded)"], rows)


# ---- persample ----------------------------------------------------------------------------

@_experiment("persample")
def persample(out: Path, quick: bool = False) -> str:
    from . import CrossEntropyLoss, Linear, Sequential, Sigmoid, fit, metrics, predict
    from .data import fashion_mnist
    from .plot import _pyplot, _save

    X, y, X_test, y_test = fashion_mnist()
    if quick:
        X, y = X[:3000], y[:3000]
    rows, accs = [], {}
    for name, act, bias in (("linear only (no activations, no biases)", None, False), ("sigmoid", Sigmoid, True)):
        def make(act=act, bias=bias):
            rng = np.random.default_rng(0)
            layers = []
            for i, (a, b) in enumerate(((784, 512), (512, 512), (512, 10))):
                layers.append(Linear(a, b, init="xavier_normal", bias=bias, rng=rng, backend="numba"))
                if act is not None and i < 2:
                    layers.append(act(backend="numba"))
            return Sequential(layers)

        _warm_up(make, CrossEntropyLoss(), X, y, batch_size=1, lr=0.02, shuffle=False)
        model = make()
        t0 = time.perf_counter()
        hist = fit(model, CrossEntropyLoss(), X, y, batch_size=1, epochs=1, lr=0.02, shuffle=False)
        accs[name] = metrics.accuracy(predict(model, X_test), y_test)
        rows.append([name, f"{100 * accs[name]:.2f}%", f"{hist[0]:.4f}", f"{time.perf_counter() - t0:.1f}", hist.path])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.barh(list(accs), [100 * a for a in accs.values()], color=["#999", "#36c"])
    for i, a in enumerate(accs.values()):
        ax.text(100 * a + 0.5, i, f"{100 * a:.1f}%", va="center")
    ax.set(xlabel="test accuracy (%)", xlim=(0, 100),
           title=f"784-512-512-10, one epoch per-sample SGD ({len(y)} samples)")
    _save(fig, out / "persample.png")
    return _table(["network", "test accuracy", "train loss", "seconds (compiling excluded)", "path"], rows)


# ---- softmax-jacobian -----------------------------------------------------------------------

@_experiment("softmax-jacobian")
def softmax_jacobian(out: Path, quick: bool = False) -> str:
    from kernels import reference as R

    from .plot import _pyplot, _save
    from .timing import best_time

    B = 256
    Ks = (2, 10, 50, 100) if quick else (2, 10, 50, 100, 200, 400)
    rng = np.random.default_rng(0)
    rows, t_jac, t_jvp = [], [], []
    for K in Ks:
        s = R.softmax(rng.standard_normal((B, K)))
        g = rng.standard_normal((B, K))
        a = best_time(lambda: np.einsum("bk,bkj->bj", g, R.softmax_jacobian(s)), 3)
        b = best_time(lambda: R.softmax_backward(s, g), 20)
        np.testing.assert_allclose(R.softmax_backward(s, g), np.einsum("bk,bkj->bj", g, R.softmax_jacobian(s)),
                                   rtol=1e-10, atol=1e-14)
        t_jac.append(a)
        t_jvp.append(b)
        rows.append([K, f"{a * 1e3:.3f}", f"{b * 1e3:.3f}", f"{a / b:.0f}x", f"{B * K * K * 8 / 2**20:.2f}",
                     f"{B * K * 8 / 2**20:.3f}"])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.loglog(Ks, [1e3 * v for v in t_jac], "-o", label="explicit Jacobian + einsum, O(B K^2)")
    ax.loglog(Ks, [1e3 * v for v in t_jvp], "-s", label="Jacobian-vector product, O(B K)")
    ax.set(xlabel="classes K", ylabel="ms per backward (B = 256)", title="backward through softmax (float64, NumPy)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    _save(fig, out / "softmax-jacobian.png")
    return _table(["K", "explicit (ms)", "JVP (ms)", "speed-up", "Jacobian memory (MiB)", "JVP memory (MiB)"], rows)


def run(name: str, out=None, quick: bool = False) -> tuple[Path, str]:
    """Run experiment ``name``; return the folder written and its Markdown table."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    out = Path(out) if out is not None else Path("runs") / "experiments" / name
    table = EXPERIMENTS[name](out, quick=quick)
    _write(out, name, table)
    return out, table
