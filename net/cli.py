"""Command line: ``python -m net train | evaluate | predict | experiment | bench | sweep`` (also ``scratchnet``).

Usage errors (unknown choices, malformed ``--layers``, impossible settings, a ``--data-root``
without the data) print one line saying what is wrong and what is valid, and exit with
status 2; a diverged training run prints one line and exits with 1; Ctrl-C exits with 130.
Messages name the program as the user typed it (``scratchnet`` or ``python -m net``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import init as initializers
from .data.errors import DatasetNotFoundError
from .optim import OPTIMIZERS
from .runs import ACTIVATIONS, DATASETS, DEFAULT_LAYERS, LOSSES, RunConfig
from .schedule import SCHEDULES
from .train import TrainingDivergedError


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump, no traceback
        raise UsageError(message)


def _layers(text: str) -> list[int]:
    parts = text.split("-")
    try:
        widths = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"malformed --layers {text!r}: expected widths joined by '-', e.g. 784-512-512-10") from None
    if len(widths) < 2 or min(widths) < 1:
        raise argparse.ArgumentTypeError(
            f"malformed --layers {text!r}: need at least two positive widths, e.g. 784-512-512-10")
    return widths


def _batch_size(text: str):
    if text == "full":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --batch-size {text!r}: a positive integer or 'full'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid --batch-size {text!r}: a positive integer or 'full'")
    return value


def _positive(kind, name):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {name} {text!r}: expected a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {text}")
        return value
    return parse


def _fraction(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"--val-fraction must lie in [0, 1), got {text}")
    return value


def _dropout(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"--dropout must lie in [0, 1), got {text}")
    return value


def _check_batchnorm(batchnorm, batch_size) -> None:
    if batchnorm and batch_size == 1:
        raise UsageError("--batchnorm needs batches of 2 or more rows (batch statistics of one row are undefined, "
                         "as in torch); pass --batch-size 2 or more, or 'full'")


def prog_name(argv0: str | None = None) -> str:
    """The program as the user typed it: ``python -m net`` for the module, else the script's name."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    name = Path(argv0).name
    if not argv0 or name in ("__main__.py", "-c", "-m"):
        return "python -m net"
    return name.removesuffix(".exe")


def build_parser(prog: str = "python -m net") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="scratchnet: train, evaluate and benchmark from the shell")
    p.set_defaults(prog=prog)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a network (defaults: the tutorial network on Fashion-MNIST)")
    t.add_argument("--dataset", choices=DATASETS, default="fashion-mnist", help="default: %(default)s")
    t.add_argument("--data-root", default=None, help="folder holding the IDX files (default: search, then download)")
    t.add_argument("--layers", type=_layers, default=None,
                   help="layer widths, e.g. 784-512-512-10 (default: by dataset; spiral 2-100-3)")
    t.add_argument("--activation", choices=list(ACTIVATIONS), default="sigmoid",
                   help="between Linear layers (default: %(default)s)")
    t.add_argument("--dropout", type=_dropout, default=None, metavar="P",
                   help="a Dropout(P) after each hidden activation (default: 0, none)")
    t.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=None,
                   help="a BatchNorm1d after each hidden Linear, before the activation (needs --batch-size >= 2)")
    t.add_argument("--loss", choices=list(LOSSES), default="softmax-ce",
                   help="softmax-ce: softmax + cross-entropy on logits (default: %(default)s)")
    t.add_argument("--init", choices=list(initializers.INITIALIZERS), default="xavier_normal",
                   help="weight initialiser; biases start at zero, except with torch_default (PyTorch's "
                        "nn.Linear default: W and b from U(+-1/sqrt(fan_in))) (default: %(default)s)")
    t.add_argument("--optimizer", choices=list(OPTIMIZERS), default=None,
                   help="PyTorch's SGD, Adam, AdamW, RMSprop or Adagrad with torch's defaults but --lr "
                        "(default: sgd; a resumed run keeps its own)")
    t.add_argument("--momentum", type=float, default=0.0,
                   help="momentum of sgd (in [0, 1)) or rmsprop (default: %(default)s)")
    t.add_argument("--weight-decay", type=float, default=None,
                   help="L2 weight decay: added to the gradient (sgd, adam, rmsprop, adagrad) or decoupled, "
                        "w *= 1 - lr * wd (adamw) (default: 0, adamw 0.01)")
    t.add_argument("--schedule", choices=list(SCHEDULES), default=None,
                   help="lr schedule, stepped after every epoch over N = --schedule-epochs: step (lr / 10 every N "
                        "epochs), exponential (lr / 10 over N epochs), cosine (to 0 over N epochs, then back up), "
                        "linear-warmup (from lr / 3 to lr over N epochs) (default: none)")
    t.add_argument("--schedule-epochs", type=_positive(int, "--schedule-epochs"), default=None,
                   help="the schedule's length N in epochs (default: 10)")
    t.add_argument("--lr", type=_positive(float, "--lr"), default=0.02, help="learning rate (default: %(default)s)")
    t.add_argument("--batch-size", type=_batch_size, default=1,
                   help="1 = per-sample SGD, 'full' = full batch (default: %(default)s)")
    t.add_argument("--epochs", type=_positive(int, "--epochs"), default=None,
                   help="epochs in total (default 1; with --resume: the new total)")
    t.add_argument("--val-fraction", type=_fraction, default=0.0,
                   help="held out from training for validation (default: %(default)s)")
    t.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=None,
                   help="reshuffle every epoch (default: file order for fashion-mnist/mnist, as the tutorial; "
                        "shuffled for spiral, whose samples are generated class by class)")
    t.add_argument("--limit", type=_positive(int, "--limit"), default=None, help="train on the first N samples")
    t.add_argument("--backend", choices=["numpy", "numba"], default="numba", help="default: %(default)s")
    t.add_argument("--threads", type=_positive(int, "--threads"), default=None,
                   help="at most N threads: per-sample SGD splits each sample between N threads (exact), "
                        "mini-batches limit BLAS to N (default: 1 thread per-sample, BLAS's own choice otherwise)")
    t.add_argument("--per-sample", choices=["auto", "fused", "compact"], default=None,
                   help="the per-sample kernel (--batch-size 1): fused (updates every weight row per sample), "
                        "compact (deferred updates in blocks of 32 samples, the same SGD to rounding) or auto "
                        "(default: compact where a hidden layer's weights exceed the L2 cache)")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="default: %(default)s")
    t.add_argument("--seed", type=int, default=0, help="initialisation, split and shuffling (default: %(default)s)")
    t.add_argument("--out", default=None, help="run folder (default: runs/<date-time>)")
    t.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its last checkpoint (--epochs = new total)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")

    e = sub.add_parser("evaluate", help="test accuracy, per-class accuracy and confusion matrix of a run")
    e.add_argument("run_dir")

    q = sub.add_parser("predict", help="classify one test image (or an image file) with a trained run")
    q.add_argument("run_dir")
    g = q.add_mutually_exclusive_group(required=True)
    g.add_argument("--index", type=int, help="index into the test set")
    g.add_argument("--image", help="a 28x28 grayscale image: .png or .npy")

    x = sub.add_parser("experiment", help="reproduce one of the tutorials' studies (PNG + table)")
    x.add_argument("name", choices=["init-depth", "losses", "persample", "softmax-jacobian"])
    x.add_argument("--out", default=None, help="folder (default: runs/experiments/NAME)")
    x.add_argument("--quick", action="store_true", help="smaller sizes")

    b = sub.add_parser("bench", help="benchmarks: the kernel suite (default) or per-sample SGD")
    b.add_argument("suite", choices=["kernels", "persample"], nargs="?", default="kernels")
    b.add_argument("--quick", action="store_true")
    b.add_argument("--compare", nargs=2, metavar=("OLD_JSON", "NEW_JSON"), help="kernels: diff two result files")
    b.add_argument("--out", default=None, help="results folder (default: ./bench-results/<machine>)")
    b.add_argument("--update-baseline", action="store_true",
                   help="write into the checkout's committed bench/results/<machine> instead")
    b.add_argument("--sweep", action="store_true",
                   help="kernels: one Dask task per group on every machine of a cluster (the 'sweep' extra); one "
                        "results folder per machine (--out DIR: DIR/<machine>)")
    b.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="--sweep: an existing Dask scheduler, e.g. tcp://HOST:8786 (default: "
                        "$DASK_SCHEDULER_ADDRESS, else one local worker)")

    w = sub.add_parser("sweep", help="a grid of training runs on Dask distributed (the 'sweep' extra)",
                       description="Cross lists of `train` options and run every combination as an ordinary run "
                                   "folder under SWEEP_DIR/runs/<name>, on a local Dask cluster or an existing one.")
    w.add_argument("config", nargs="?", help="TOML or JSON file: [train] fixed options, [grid] lists to cross")
    w.add_argument("--out", metavar="SWEEP_DIR", help="sweep folder: runs/, results.csv, summary.png")
    w.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                   help="a fixed train option, named as in config.json (repeatable), e.g. --set dataset=spiral")
    w.add_argument("--grid", action="append", default=[], metavar="OPTION=V1,V2",
                   help="values to cross (repeatable), e.g. --grid lr=0.01,0.05 --grid seed=0,1,2")
    w.add_argument("--resume", action="store_true", help="keep the finished runs in SWEEP_DIR, continue the others")
    w.add_argument("--report", metavar="SWEEP_DIR", help="rebuild results.csv and summary.png from the run folders")
    w.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="an existing Dask scheduler, e.g. tcp://HOST:8786 (default: $DASK_SCHEDULER_ADDRESS, "
                        "else a local cluster)")
    w.add_argument("--workers", type=_positive(int, "--workers"), default=None,
                   help="local cluster: worker processes of one thread each (default: one per core)")
    w.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _check_per_sample(per_sample, batch_size, backend, momentum) -> None:
    if per_sample == "compact" and (batch_size != 1 or backend != "numba" or momentum):
        raise UsageError(f"--per-sample compact is a per-sample kernel: --batch-size 1, --backend numba and no "
                         f"--momentum (this run: --batch-size {batch_size}, --backend {backend}, --momentum "
                         f"{momentum:g})")


def _check_optimizer(args, per_sample) -> tuple[str, float]:
    """``(optimizer, weight_decay)`` of a new run, checked against the other options."""
    optimizer = args.optimizer or "sgd"
    weight_decay = (0.01 if optimizer == "adamw" else 0.0) if args.weight_decay is None else args.weight_decay
    if not weight_decay >= 0:
        raise UsageError(f"--weight-decay must be >= 0, got {args.weight_decay}")
    if args.momentum and optimizer not in ("sgd", "rmsprop"):
        raise UsageError(f"--momentum applies to --optimizer sgd or rmsprop, not {optimizer} (its betas are torch's "
                         "defaults)")
    unfused = optimizer != "sgd" or weight_decay
    if unfused and (per_sample == "compact" or ((args.threads or 1) > 1 and args.batch_size == 1)):
        raise UsageError(f"--per-sample compact and --threads > 1 with --batch-size 1 run the fused SGD kernels: "
                         f"--optimizer sgd without --weight-decay (this run: --optimizer {optimizer}, "
                         f"--weight-decay {weight_decay:g})")
    return optimizer, weight_decay


def _check_resume_keeps(args, cfg) -> None:
    """A resumed run keeps its optimizer and schedule: an option given that differs is an error."""
    for flag, given, kept in (("--optimizer", args.optimizer, cfg.optimizer),
                              ("--weight-decay", args.weight_decay, cfg.weight_decay),
                              ("--schedule", args.schedule, cfg.schedule),
                              ("--schedule-epochs", args.schedule_epochs, cfg.schedule_epochs)):
        if given is not None and given != kept:
            raise UsageError(f"--resume: the run was trained with {flag} {kept}; a resumed run continues with its "
                             f"own optimizer and schedule (drop {flag} {given})")
    if args.per_sample == "compact" and (cfg.optimizer != "sgd" or cfg.weight_decay):
        raise UsageError(f"--per-sample compact runs the fused SGD kernel; this run uses --optimizer {cfg.optimizer}"
                         f" --weight-decay {cfg.weight_decay:g}")


def _with_schedule(cfg: RunConfig, args) -> RunConfig:
    """``cfg`` with the weight decay and schedule options of a new run."""
    cfg.weight_decay = args.weight_decay
    cfg.schedule, cfg.schedule_epochs = args.schedule or "none", args.schedule_epochs or 10
    return cfg


def _config_from_args(args) -> RunConfig:
    args.epochs = 1 if args.epochs is None else args.epochs
    layers = args.layers or [int(w) for w in DEFAULT_LAYERS[args.dataset].split("-")]
    expected_in = {"fashion-mnist": 784, "mnist": 784, "spiral": 2}[args.dataset]
    if layers[0] != expected_in:
        raise UsageError(f"--layers starts with {layers[0]} inputs but {args.dataset} has {expected_in} "
                         f"features per sample; start with {expected_in}, e.g. "
                         f"{expected_in}-{'-'.join(map(str, layers[1:]))}")
    if args.dataset != "spiral" and layers[-1] != 10:
        raise UsageError(f"--layers ends with {layers[-1]} outputs but {args.dataset} has 10 classes")
    if not 0 <= args.momentum < 1:
        raise UsageError(f"--momentum must lie in [0, 1), got {args.momentum}")
    if (args.threads or 1) > 1 and args.batch_size == 1 and (args.backend != "numba" or args.momentum):
        raise UsageError("--threads > 1 with --batch-size 1 needs the fused per-sample kernel: --backend numba "
                         "and no --momentum")
    per_sample = args.per_sample or "auto"
    _check_per_sample(per_sample, args.batch_size, args.backend, args.momentum)
    args.optimizer, args.weight_decay = _check_optimizer(args, per_sample)     # the rest: _with_schedule
    _check_batchnorm(args.batchnorm, args.batch_size)
    return RunConfig(dataset=args.dataset, data_root=args.data_root, layers=layers, activation=args.activation,
                     loss=args.loss, init=args.init, optimizer=args.optimizer, momentum=args.momentum, lr=args.lr,
                     batch_size=args.batch_size, epochs=args.epochs, val_fraction=args.val_fraction,
                     shuffle=args.dataset == "spiral" if args.shuffle is None else args.shuffle,
                     limit=args.limit, backend=args.backend, threads=args.threads, per_sample=per_sample,
                     dtype=args.dtype, seed=args.seed)


def new_run_config(args) -> RunConfig:
    """The :class:`RunConfig` of a new ``train`` run from its parsed arguments (every option: the
    ones checked by :func:`_config_from_args`, the schedule and the layers' options); ``sweep``
    builds its runs with this too, so a sweep option means what it means on the command line."""
    cfg = _with_schedule(_config_from_args(args), args)
    cfg.dropout, cfg.batchnorm = args.dropout or 0.0, bool(args.batchnorm)      # the layers' options
    return cfg


def cmd_train(args) -> int:
    from .runs import read_config, train

    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "checkpoint.npz").is_file():
            raise UsageError(f"--resume {run_dir}: no checkpoint.npz there; pass a run folder written by "
                             f"'{args.prog} train --out RUN_DIR'")
        cfg = read_config(run_dir)
        _check_resume_keeps(args, cfg)
        if args.epochs is not None:
            cfg.epochs = args.epochs
        if args.threads is not None:
            cfg.threads = args.threads
        if args.per_sample is not None:
            _check_per_sample(args.per_sample, cfg.batch_size, cfg.backend, cfg.momentum)
            cfg.per_sample = args.per_sample
        for given, saved, made in ((args.dropout, cfg.dropout, f"--dropout {cfg.dropout:g}"),
                                   (args.batchnorm, cfg.batchnorm, "--batchnorm" if cfg.batchnorm else "--no-batchnorm")):
            if given is not None and given != saved:     # the checkpoint holds the architecture
                raise UsageError(f"--resume {run_dir}: the run was made with {made}, and a resumed run keeps its "
                                 "layers; leave --dropout/--batchnorm out")
    else:
        cfg = new_run_config(args)
        run_dir = Path(args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
        if (run_dir / "checkpoint.npz").exists():
            raise UsageError(f"--out {run_dir} already holds a run; use --resume {run_dir} or another --out")
    print(f"run folder: {run_dir}")
    try:
        history = train(cfg, run_dir, resume=bool(args.resume), progress=not args.no_progress)
    except KeyboardInterrupt:
        return _interrupted(run_dir, args.prog)
    except TrainingDivergedError as exc:
        print(f"{args.prog}: training diverged: {exc} (--lr {cfg.lr:g} now); {run_dir}/history.json records "
              "the failure", file=sys.stderr)
        return 1
    except DatasetNotFoundError as exc:
        if cfg.data_root is None:
            raise
        raise UsageError(str(exc)) from None
    if history:
        print(f"final test accuracy {100 * history[-1]['test_acc']:.2f}%")
    return 0


def _interrupted(run_dir: Path, prog: str) -> int:
    if (run_dir / "checkpoint.npz").is_file():
        print(f"interrupted; the last finished epoch's checkpoint is intact (resume with {prog} train --resume "
              f"{run_dir})", file=sys.stderr)
    else:
        print("interrupted before the first epoch finished; there is no checkpoint to resume from", file=sys.stderr)
    return 130


def _load_run(run_dir):
    from . import io
    from .runs import load_data, read_config

    run_dir = Path(run_dir)
    path = run_dir / "model.npz"
    if not path.is_file():
        if not (run_dir / "checkpoint.npz").is_file():
            raise UsageError(f"{run_dir}: no model.npz, no checkpoint.npz; pass a run folder written by "
                             "'python -m net train'")
        path = run_dir / "checkpoint.npz"
        print(f"{run_dir}: no model.npz (the run did not finish); using its last checkpoint", file=sys.stderr)
    cfg = read_config(run_dir)
    model = io.load(path, backend=cfg.backend, widths=cfg.layers, dtype=cfg.dtype)  # verified: digest, shapes
    return cfg, model, load_data(cfg, progress=False)


def cmd_evaluate(args) -> int:
    from .extras import MissingExtra
    from .plot import confusion
    from .runs import LOSSES, score_test_set

    cfg, model, data = _load_run(args.run_dir)
    loss, acc, cm = score_test_set(model, LOSSES[cfg.loss](cfg.backend), data)
    print(f"test loss {loss:.4f}  test accuracy {100 * acc:.2f}%  ({len(data.y_test)} samples)")
    width = max(len(n) for n in data.class_names)
    print(f"{'class':<{width}}  accuracy")
    for k, name in enumerate(data.class_names):
        total = cm[k].sum()
        print(f"{name:<{width}}  {100 * cm[k, k] / total:6.2f}%" if total else f"{name:<{width}}     n/a")
    print("confusion matrix (rows: true, columns: predicted):")
    print(np.array2string(cm, max_line_width=200))
    try:
        out = confusion(cm, data.class_names, Path(args.run_dir) / "confusion.png", title="test confusion matrix")
        print(f"wrote {out}")
    except MissingExtra as exc:
        print(f"no figure written: {exc}", file=sys.stderr)
    return 0


def _read_image(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--image {path}: no such file")
    if p.suffix == ".npy":
        img = np.load(p, allow_pickle=False).astype(np.float64)
    elif p.suffix.lower() == ".png":
        from .extras import require

        mpimg = require("matplotlib.image", "plot", "reading .png images")

        img = mpimg.imread(p).astype(np.float64)
        if img.ndim == 3:
            img = img[..., :3].mean(axis=2)
    else:
        raise UsageError(f"--image {path}: unsupported file type {p.suffix!r}; use .png or .npy")
    if img.max() > 1:
        img = img / 255.0
    return img


def cmd_predict(args) -> int:
    from .layers import Softmax

    cfg, model, data = _load_run(args.run_dir)
    n_in = model.layers[0].in_features
    if args.index is not None:
        if not 0 <= args.index < len(data.y_test):
            raise UsageError(f"--index {args.index}: the test set has indices 0..{len(data.y_test) - 1}")
        x, truth = data.X_test[args.index], data.class_names[data.y_test[args.index]]
    else:
        x, truth = _read_image(args.image), None
    if x.size != n_in:
        raise UsageError(f"the image has {x.size} values but the model takes {n_in} (e.g. 28x28)")
    scores = model.forward(np.asarray(x).reshape(1, n_in))
    probs = Softmax().forward(scores)[0] if cfg.loss == "softmax-ce" else scores[0]
    best = int(np.argmax(probs))
    print(f"prediction: {data.class_names[best]} ({100 * probs[best]:.1f}%)" +
          (f"   truth: {truth}" if truth is not None else ""))
    for k in np.argsort(probs)[::-1]:
        print(f"  {data.class_names[k]:<12} {probs[k]:.4f}")
    return 0


def cmd_experiment(args) -> int:
    from .experiments import run

    out, table = run(args.name, args.out, quick=args.quick)
    print(table)
    print(f"wrote {out}/{args.name}.png and {out}/{args.name}.md")
    return 0


def cmd_bench(args) -> int:
    try:
        import bench  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "bench":
            raise
        print(f"{getattr(args, 'prog', 'python -m net')} bench: the benchmarks run from a source checkout (bench/ is "
              "not installed with scratchnet-numba); clone the repository and run this from its top folder",
              file=sys.stderr)
        return 1
    if args.scheduler and not args.sweep:
        raise UsageError("--scheduler sends `bench --sweep` to a Dask cluster; add --sweep")
    if args.sweep:
        from .sweep_bench import cmd_bench_sweep

        return cmd_bench_sweep(args)
    where = (["--out", args.out] if args.out else []) + (["--update-baseline"] if args.update_baseline else [])
    if args.suite == "persample":
        from bench.persample import main as persample_main

        return persample_main((["--quick"] if args.quick else []) + where)
    from bench.report import main as report_main

    argv = (["--quick"] if args.quick else []) + (["--compare", *args.compare] if args.compare else [])
    return report_main(argv + where)


def cmd_sweep(args) -> int:
    from .sweep import cmd_sweep as run

    return run(args)


def main(argv=None) -> int:
    """Run the command line; ``argv`` defaults to ``sys.argv[1:]``.  Returns the exit status."""
    prog = prog_name() if argv is None else "python -m net"
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        handler = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "bench": cmd_bench,
                   "experiment": cmd_experiment, "sweep": cmd_sweep}
        return handler[args.command](args)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. head
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from .data import DatasetError
        from .extras import MissingExtra
        from .io import CheckpointError

        if isinstance(exc, (DatasetError, CheckpointError, MissingExtra)):
            print(f"{prog}: {exc}", file=sys.stderr)
            return 1
        raise
