"""Optimisers, schedules and init of issue 13 (net.optim, net.schedule, init="torch_default").

PyTorch agreement is in tests/reference/test_torch_optim.py; here: state round trips (a run
stopped, saved, loaded and continued ends with the weights of one that never stopped, bit for
bit), checkpoints (any optimiser's buffers and the schedule; the earlier SGD format), argument
errors, the fused path's refusals, l1, fit with Adam and a schedule, the init's distribution,
and a resumed CLI run with Adam and a cosine schedule.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import net
from net import CrossEntropyLoss, Linear, ReLU, Sequential, fit, io
from net.data import spiral

BACKENDS = ["numpy", "numba"]

#: (id, class, keyword arguments): every option that has its own state or branch
VARIANTS = [
    ("sgd-momentum-dampening", net.SGD, dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=1e-3)),
    ("sgd-nesterov-l1", net.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, l1=1e-3)),
    ("adam-amsgrad", net.Adam, dict(lr=1e-2, amsgrad=True, weight_decay=1e-3, l1=1e-4)),
    ("adamw", net.AdamW, dict(lr=1e-2)),
    ("rmsprop-centered-momentum", net.RMSprop, dict(lr=1e-3, centered=True, momentum=0.5, weight_decay=1e-3)),
    ("adagrad", net.Adagrad, dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1)),
]
SCHEDULES = [
    ("none", None, {}),
    ("step", net.StepLR, dict(step_size=2, gamma=0.5)),
    ("cosine", net.CosineAnnealingLR, dict(T_max=3, eta_min=1e-4)),
    ("linear", net.LinearLR, dict(start_factor=0.5, total_iters=3)),
]


def _ids(cases):
    return [c[0] for c in cases]


def _model(backend, seed=0):
    return Sequential(Linear(2, 8, backend=backend, rng=seed), ReLU(backend=backend),
                      Linear(8, 3, backend=backend, rng=seed + 1))


def _weights(model):
    return [p.value.copy() for p in model.parameters()]


def _train(model, opt, sched, X, y, epochs, rng):
    fit(model, CrossEntropyLoss(backend=model.backend), X, y, batch_size=16, epochs=epochs, optimizer=opt,
        scheduler=sched, rng=rng)


# ---- state round trips ----------------------------------------------------------------------------

@pytest.mark.parametrize("schedule", SCHEDULES, ids=_ids(SCHEDULES))
@pytest.mark.parametrize("variant", VARIANTS, ids=_ids(VARIANTS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_checkpointed_and_resumed_run_equals_an_unbroken_one(tmp_path, backend, variant, schedule):
    """3 epochs straight vs 2 epochs, save_checkpoint, load_checkpoint into fresh objects (built
    as the CLI builds them: scheduler first, then the states), 1 more epoch: identical weights,
    optimiser buffers and lr."""
    _, cls, kwargs = variant
    _, sched_cls, sched_kwargs = schedule
    X, y = spiral(40, 3, rng=0)

    def make(model):
        opt = cls(model.parameters(), **kwargs)
        return opt, (sched_cls(opt, **sched_kwargs) if sched_cls else None)

    straight = _model(backend)
    opt, sched = make(straight)
    _train(straight, opt, sched, X, y, 3, np.random.default_rng(1))

    split = _model(backend)
    opt2, sched2 = make(split)
    rng = np.random.default_rng(1)
    _train(split, opt2, sched2, X, y, 2, rng)
    io.save_checkpoint(tmp_path / "c.npz", split, opt2, epoch=2, rng=rng, history=[], scheduler=sched2)
    state = io.load_checkpoint(tmp_path / "c.npz", backend=backend)
    resumed = state["model"]
    opt3, sched3 = make(resumed)
    opt3.load_state_dict(state["optimizer_state"])
    if sched3 is not None:
        sched3.load_state_dict(state["scheduler_state"])
    else:
        assert state["scheduler_state"] is None
    _train(resumed, opt3, sched3, X, y, 1, state["rng"])

    for a, b in zip(_weights(straight), _weights(resumed)):
        np.testing.assert_array_equal(a, b)
    assert opt3.lr == opt.lr and opt3.step_count == opt.step_count
    for name in opt._buffers:
        ours, theirs = getattr(opt, name), getattr(opt3, name)
        assert (ours is None) == (theirs is None), name
        for a, b in zip(ours or [], theirs or []):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids(VARIANTS))
def test_state_dict_round_trip_continues_identically(variant):
    """In memory: load_state_dict into a new optimiser over a copy of the weights, then both step
    on the same gradients; the state is copied (stepping one leaves the saved dict unchanged)."""
    _, cls, kwargs = variant
    a, b = _model("numpy"), _model("numpy")
    opt_a = cls(a.parameters(), **kwargs)

    def grads(model, seed):
        r = np.random.default_rng(seed)
        for p in model.parameters():
            p.layer.grads[p.name] = r.standard_normal(p.value.shape).astype(p.value.dtype)

    for s in range(3):
        grads(a, s)
        opt_a.step()
    state = opt_a.state_dict()
    saved = json.dumps({k: v for k, v in state.items() if not isinstance(v, list) or not v
                        or not isinstance(v[0], np.ndarray)}, sort_keys=True)      # the JSON part is JSON
    for pa, pb in zip(a.parameters(), b.parameters()):
        pb.value[...] = pa.value
    opt_b = cls(b.parameters(), lr=123.0)
    opt_b.load_state_dict(state)
    assert opt_b.lr == kwargs["lr"] and opt_b.step_count == 3
    for s in range(3, 6):
        grads(a, s)
        grads(b, s)
        opt_a.step()
        opt_b.step()
    for x, z in zip(_weights(a), _weights(b)):
        np.testing.assert_array_equal(x, z)
    assert json.dumps({k: v for k, v in state.items() if not isinstance(v, list) or not v
                       or not isinstance(v[0], np.ndarray)}, sort_keys=True) == saved


def test_a_checkpoint_of_the_earlier_format_loads_into_sgd(tmp_path):
    """Checkpoints written before issue 13: SGD's {"lr", "momentum"} as JSON, velocity/<i> arrays."""
    model = _model("numpy")
    velocity = [np.full(p.value.shape, 0.5, p.value.dtype) for p in model.parameters()]
    extra = {"epoch": 1, "optimizer": {"lr": 0.1, "momentum": 0.9}, "rng_state": np.random.default_rng(0)
             .bit_generator.state, "history": [], "config": {}}
    io.save(model, tmp_path / "old.npz", extra=extra, arrays={f"velocity/{i}": v for i, v in enumerate(velocity)})
    state = io.load_checkpoint(tmp_path / "old.npz")
    opt = net.SGD(state["model"].parameters(), lr=0.5, momentum=0.9)
    opt.load_state_dict(state["optimizer_state"])
    assert opt.lr == 0.1 and state["scheduler_state"] is None
    for v, w in zip(opt.velocity, velocity):
        np.testing.assert_array_equal(v, w)
    # the buffers hold history: the next step is momentum * buf + g, not torch's first-step buf = g
    for p in opt.params:
        p.layer.grads[p.name] = np.ones_like(p.value)
    opt.step()
    np.testing.assert_allclose(opt.velocity[0], 0.9 * 0.5 + 1, rtol=1e-6)


def test_a_checkpoint_missing_an_optimizer_array_is_a_checkpoint_error(tmp_path):
    model = _model("numpy")
    opt = net.Adam(model.parameters())
    for p in opt.params:
        p.layer.grads[p.name] = np.ones_like(p.value)
    opt.step()
    io.save_checkpoint(tmp_path / "c.npz", model, opt, epoch=1, rng=np.random.default_rng(0), history=[])
    meta, arrays = io.read(tmp_path / "c.npz")
    arrays = {k.removeprefix("extra/"): v for k, v in arrays.items() if k.startswith("extra/")}
    del arrays["exp_avg/1"]
    io.save(model, tmp_path / "d.npz", extra=meta["extra"], arrays=arrays)
    with pytest.raises(io.CheckpointError, match="optimizer state exp_avg/1 is missing"):
        io.load_checkpoint(tmp_path / "d.npz")


def test_loading_another_optimizers_state_is_an_error():
    model = _model("numpy")
    with pytest.raises(ValueError, match="the state is Adam's; build a Adam"):
        net.SGD(model.parameters()).load_state_dict(net.Adam(model.parameters()).state_dict())
    bad = net.Adam(model.parameters()).state_dict()
    bad["exp_avg"] = [np.zeros(3)] * len(model.parameters())
    with pytest.raises(ValueError, match=r"exp_avg has an array of shape \(3,\) float64"):
        net.Adam(model.parameters()).load_state_dict(bad)


# ---- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,message", [
    (lambda p: net.SGD(p, lr=0), "SGD: lr must be > 0, got 0.0"),
    (lambda p: net.SGD(p, lr=0.1, momentum=-0.1), r"SGD: momentum must lie in \[0, 1\), got -0.1"),
    (lambda p: net.SGD(p, lr=0.1, dampening=-1), "SGD: dampening must be >= 0"),
    (lambda p: net.SGD(p, lr=0.1, weight_decay=-1e-3), "SGD: weight_decay must be >= 0"),
    (lambda p: net.SGD(p, lr=0.1, nesterov=True), "Nesterov momentum needs momentum > 0 and dampening 0"),
    (lambda p: net.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov momentum needs"),
    (lambda p: net.SGD(p, lr=0.1, l1=-1), "SGD: l1 must be >= 0"),
    (lambda p: net.Adam(p, lr=-1), "Adam: lr must be > 0"),
    (lambda p: net.Adam(p, betas=(1.0, 0.999)), r"Adam: betas\[0\] must lie in \[0, 1\), got 1.0"),
    (lambda p: net.Adam(p, betas=(0.9, -0.1)), r"Adam: betas\[1\] must lie in \[0, 1\)"),
    (lambda p: net.Adam(p, eps=-1e-8), "Adam: eps must be >= 0"),
    (lambda p: net.AdamW(p, weight_decay=-0.1), "AdamW: weight_decay must be >= 0"),
    (lambda p: net.RMSprop(p, alpha=-0.5), "RMSprop: alpha must be >= 0"),
    (lambda p: net.RMSprop(p, momentum=-0.5), "RMSprop: momentum must be >= 0"),
    (lambda p: net.Adagrad(p, lr_decay=-1), "Adagrad: lr_decay must be >= 0"),
    (lambda p: net.Adagrad(p, initial_accumulator_value=-1), "Adagrad: initial_accumulator_value must be >= 0"),
    (lambda p: net.Adagrad(p, eps=float("nan")), "Adagrad: eps must be >= 0, got nan"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_invalid_hyper_parameters_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make(_model("numpy").parameters())


def test_non_numbers_and_bad_betas_are_type_errors():
    params = _model("numpy").parameters()
    with pytest.raises(TypeError, match="Adam: betas must be a pair"):
        net.Adam(params, betas=0.9)
    with pytest.raises(TypeError, match="SGD: momentum must be a real number, got str"):
        net.SGD(params, lr=0.1, momentum="0.9")
    with pytest.raises(TypeError, match="StepLR: SGD is not an Optimizer|not an Optimizer"):
        net.StepLR(object(), step_size=1)


def test_schedule_errors():
    opt = net.SGD(_model("numpy").parameters(), lr=0.1)
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive integer"):
        net.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="CosineAnnealingLR: T_max must be a positive integer"):
        net.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match=r"LinearLR: start_factor must lie in \(0, 1\]"):
        net.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="last_epoch=3 resumes a schedule, but the optimizer has no initial_lr"):
        net.ExponentialLR(opt, gamma=0.9, last_epoch=3)
    with pytest.raises(ValueError, match="the state is StepLR's"):
        net.ExponentialLR(opt, gamma=0.9).load_state_dict(net.StepLR(opt, step_size=2).state_dict())


def test_a_step_without_gradients_names_the_parameter():
    model = _model("numpy")
    with pytest.raises(RuntimeError, match=r"Adam.step: no gradient for Linear\(2 -> 8\).W"):
        net.Adam(model.parameters()).step()


def test_fit_refuses_a_scheduler_of_another_optimizer():
    X, y = spiral(10, 3, rng=0)
    model = _model("numpy")
    other = net.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="the scheduler adjusts another optimizer's lr"):
        fit(model, CrossEntropyLoss(), X, y, optimizer=net.SGD(model.parameters(), lr=0.1),
            scheduler=net.StepLR(other, step_size=1))


# ---- the fused path ------------------------------------------------------------------------------

@pytest.mark.parametrize("make,named", [
    (lambda p: net.Adam(p, lr=1e-3), "run our SGD, not Adam"),
    (lambda p: net.RMSprop(p), "run our SGD, not RMSprop"),
    (lambda p: net.SGD(p, lr=0.05, momentum=0.9, dampening=0.1), "plain momentum only, not dampening=0.1"),
    (lambda p: net.SGD(p, lr=0.05, weight_decay=1e-4), "not weight_decay=0.0001"),
    (lambda p: net.SGD(p, lr=0.05, momentum=0.9, nesterov=True), "not nesterov=True"),
    (lambda p: net.SGD(p, lr=0.05, l1=1e-4), "not l1=0.0001"),
], ids=["adam", "rmsprop", "dampening", "weight_decay", "nesterov", "l1"])
@pytest.mark.parametrize("batch_size", [1, 8])
def test_the_fused_path_refuses_what_its_kernels_do_not_compute(make, named, batch_size):
    """fused=True raises naming the option; the default falls back to the layer loop, whose
    result is the optimiser's own (equal to fused=False)."""
    X, y = spiral(20, 3, rng=0)
    model = _model("numba")
    with pytest.raises(ValueError, match=f"fit: fused=True needs a fused kernel, but .*{named}"):
        fit(model, CrossEntropyLoss(backend="numba"), X, y, batch_size=batch_size, optimizer=make(model.parameters()),
            fused=True)
    runs = []
    for fused in (None, False):
        model = _model("numba")
        hist = fit(model, CrossEntropyLoss(backend="numba"), X, y, batch_size=batch_size, epochs=2,
                   optimizer=make(model.parameters()), fused=fused, rng=0)
        assert hist.path == "layers"
        runs.append(_weights(model))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_plain_momentum_sgd_with_a_schedule_stays_fused_and_reads_the_lr_every_epoch():
    """ExponentialLR under the fused mini-batch kernel: the same weights as the layer loop (to
    rounding), and not those of a constant lr (the kernel took each epoch's lr)."""
    X, y = spiral(30, 3, rng=0)
    out = {}
    for fused, gamma in ((True, 0.5), (False, 0.5), (True, 1.0)):
        model = _model("numba")
        opt = net.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sched = net.ExponentialLR(opt, gamma=gamma)
        hist = fit(model, CrossEntropyLoss(backend="numba"), X, y, batch_size=8, epochs=3, optimizer=opt,
                   scheduler=sched, fused=fused, rng=0)
        assert hist.path == ("fused" if fused else "layers")
        assert opt.lr == pytest.approx(0.1 * gamma ** 3)
        out[fused, gamma] = _weights(model)
    for a, b, c in zip(out[True, 0.5], out[False, 0.5], out[True, 1.0]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        assert np.abs(a - c).max() > 1e-3


@pytest.mark.parametrize("cls", [net.Adam, net.AdamW, net.RMSprop, net.Adagrad])
@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_trains_with_every_optimizer(backend, cls):
    X, y = spiral(50, 3, rng=0)
    model = _model(backend)
    opt = cls(model.parameters(), lr=0.2 if cls is net.Adagrad else 0.02)
    hist = fit(model, CrossEntropyLoss(backend=backend), X, y, batch_size=16, epochs=15, optimizer=opt, rng=0,
               scheduler=net.CosineAnnealingLR(opt, T_max=15))
    assert hist.path == "layers" and hist[-1] < 0.8 * hist[0]
    assert all(p.value.dtype == np.float32 for p in model.parameters())


# ---- l1 (scratchnet's extra) ------------------------------------------------------------------------

def _set_grads(model, seed):
    r = np.random.default_rng(seed)
    for p in model.parameters():
        p.layer.grads[p.name] = r.standard_normal(p.value.shape).astype(p.value.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_l1_adds_l1_times_sign_w_to_the_gradient(backend):
    model = _model(backend)
    model[0].params["W"][0, :3] = 0                           # sign(0) = 0: no pull
    before = _weights(model)
    _set_grads(model, 0)
    net.SGD(model.parameters(), lr=0.1, l1=0.01).step()
    for w0, p in zip(before, model.parameters()):
        g = p.grad
        expected = w0 - np.float32(0.1) * (g + np.float32(0.01) * np.sign(w0))
        np.testing.assert_allclose(p.value, expected, rtol=1e-6, atol=1e-7)
    assert np.array_equal(model[0].params["W"][0, :3], -np.float32(0.1) * model[0].grads["W"][0, :3])


@pytest.mark.parametrize("cls", [net.Adam, net.AdamW, net.RMSprop, net.Adagrad])
@pytest.mark.parametrize("backend", BACKENDS)
def test_l1_is_the_step_on_the_gradient_plus_l1_sign_w(backend, cls):
    """The same optimiser without l1, fed ``g + l1 sign(w)`` (with w after AdamW's decoupled
    decay, whose factor is positive), takes the same steps."""
    a, b = _model(backend), _model(backend)
    opt_a, opt_b = cls(a.parameters(), lr=0.01, l1=0.05), cls(b.parameters(), lr=0.01)
    for s in range(4):
        _set_grads(a, s)
        _set_grads(b, s)
        for p in b.parameters():
            p.layer.grads[p.name] = p.grad + np.float32(0.05) * np.sign(p.value)
        opt_a.step()
        opt_b.step()
    for x, z in zip(_weights(a), _weights(b)):
        np.testing.assert_allclose(x, z, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(_weights(a)[0], _weights(_model(backend))[0])


def test_l1_pulls_weights_towards_zero():
    """With zero gradients, l1 alone shrinks every weight's magnitude by lr * l1 per SGD step."""
    model = _model("numpy")
    before = _weights(model)
    opt = net.SGD(model.parameters(), lr=0.1, l1=0.01)
    for p in model.parameters():
        p.layer.grads[p.name] = np.zeros_like(p.value)
    opt.step()
    for w0, p in zip(before, model.parameters()):
        moved = np.abs(w0) > 0.01
        np.testing.assert_allclose(np.abs(p.value[moved]), np.abs(w0[moved]) - 0.001, rtol=1e-5, atol=1e-6)


# ---- init="torch_default" --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_default_init_draws_w_and_b_from_torchs_uniform(dtype):
    """torch.nn.Linear's reset_parameters: kaiming_uniform_(a=sqrt(5)) for the weight, i.e.
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.  Bounds, mean and
    variance 1/(3 fan_in), each within 5 standard errors of the estimate."""
    fan_in, fan_out = 400, 300
    layer = Linear(fan_in, fan_out, init="torch_default", rng=0, dtype=dtype)
    wide = Linear(16, 20000, init="torch_default", rng=1, dtype=dtype)       # many biases
    for x, fan in ((layer.params["W"], fan_in), (layer.params["b"], fan_in), (wide.params["b"], 16)):
        bound = 1 / np.sqrt(fan)
        n = x.size
        assert x.dtype == dtype and np.abs(x).max() <= bound
        var = bound ** 2 / 3
        assert abs(x.mean()) < 5 * np.sqrt(var / n)
        assert abs(x.var() - var) < 5 * np.sqrt((bound ** 4 / 5 - var ** 2) / n)
        if n > 1000:
            assert np.abs(x).max() > 0.99 * bound                   # the whole range is used
    assert not np.array_equal(layer.params["b"], Linear(fan_in, fan_out, init="torch_default", rng=2).params["b"])


def test_other_inits_keep_zero_biases_and_torch_default_is_a_cli_choice():
    assert not Linear(5, 4, init="xavier_normal", rng=0).params["b"].any()
    assert "torch_default" in net.init.INITIALIZERS


# ---- the command line ------------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "net", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=Path(__file__).resolve().parents[1])


def _run_weights(run_dir):
    return [p.value for p in io.load(Path(run_dir) / "checkpoint.npz").parameters()]


def test_cli_adam_with_weight_decay_and_cosine_resumes_bit_identically(tmp_path):
    """3 epochs straight vs 1 epoch + --resume to 3 (the schedule's lr after the resume comes from
    the checkpoint's schedule state; Adam's moments from its buffers); config.json holds the options."""
    common = ["train", "--dataset", "spiral", "--activation", "relu", "--no-progress", "--optimizer", "adam",
              "--weight-decay", "1e-4", "--schedule", "cosine", "--schedule-epochs", "4", "--batch-size", "16",
              "--lr", "0.01", "--seed", "3", "--init", "torch_default"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _cli(*common, "--epochs", "3", "--out", straight).returncode == 0
    assert _cli(*common, "--epochs", "1", "--out", split).returncode == 0
    res = _cli("train", "--resume", split, "--epochs", "3", "--no-progress")
    assert res.returncode == 0, res.stderr
    for a, b in zip(_run_weights(straight), _run_weights(split)):
        np.testing.assert_array_equal(a, b)
    config = json.loads((split / "config.json").read_text())["config"]
    assert (config["optimizer"], config["weight_decay"], config["schedule"], config["schedule_epochs"],
            config["init"]) == ("adam", 1e-4, "cosine", 4, "torch_default")
    state = io.load_checkpoint(split / "checkpoint.npz")
    assert state["optimizer_state"]["type"] == "Adam" and state["scheduler_state"]["last_epoch"] == 3
    lrs = [row["lr"] for row in json.loads((split / "history.json").read_text())["epochs"]]
    np.testing.assert_allclose(lrs, [0.01 * (1 + np.cos(np.pi * e / 4)) / 2 for e in range(3)], rtol=1e-14)
    res = _cli("train", "--resume", split, "--epochs", "4", "--optimizer", "sgd", "--no-progress")
    assert res.returncode == 2 and "the run was trained with --optimizer adam" in res.stderr


@pytest.mark.parametrize("args,message", [
    (["--optimizer", "adam", "--momentum", "0.9"], "--momentum applies to --optimizer sgd or rmsprop, not adam"),
    (["--weight-decay", "-1"], "--weight-decay must be >= 0"),
    (["--optimizer", "adam", "--per-sample", "compact"], "run the fused SGD kernels"),
    (["--schedule", "cyclic"], "invalid choice: 'cyclic'"),
])
def test_cli_optimizer_usage_errors(tmp_path, args, message):
    res = _cli("train", "--dataset", "spiral", "--no-progress", "--out", tmp_path / "r", *args)
    assert res.returncode == 2 and message in res.stderr, res.stderr
