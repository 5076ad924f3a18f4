"""scratchnet's optimisers and schedules against ``torch.optim`` (``pip install torch==2.13.0``).

Every optimiser variant (momentum, dampening, Nesterov, weight decay coupled and decoupled,
amsgrad, centered, lr_decay, ...) under every schedule takes 20 steps from the same weights
(a Linear layer's W and b) with the same sequence of random gradients, on both backends and
both dtypes; the weights are compared with torch's after every step (float64: to rounding,
float32: per-dtype tolerance), the learning rates exactly, the state buffers at the end.
``SCRATCHNET_REQUIRE_TORCH=1`` turns a missing torch into a failure instead of a skip.
"""
import os

import numpy as np
import pytest

if os.environ.get("SCRATCHNET_REQUIRE_TORCH"):
    import torch
else:
    torch = pytest.importorskip("torch")

import net  # noqa: E402
from net import Linear, Sequential  # noqa: E402

pytestmark = pytest.mark.torch

BACKENDS = ["numpy", "numba"]
DTYPES = [np.float32, np.float64]
#: float64: the same operations in the same order (torch's CPU kernels may fuse a multiply-add);
#: float32: torch's FMAs and our separate roundings part by an ulp or so per step.
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
STEPS = 20

#: (id, our class, torch class, keyword arguments (the same for both))
OPTIMIZERS = [
    ("sgd", net.SGD, torch.optim.SGD, dict(lr=0.05)),
    ("sgd-momentum", net.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    ("sgd-dampening-wd", net.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-2)),
    ("sgd-nesterov-wd", net.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-2)),
    ("adam", net.Adam, torch.optim.Adam, dict(lr=1e-2)),
    ("adam-wd", net.Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=1e-2)),
    ("adam-amsgrad-wd", net.Adam, torch.optim.Adam, dict(lr=1e-2, weight_decay=1e-2, amsgrad=True)),
    ("adam-betas", net.Adam, torch.optim.Adam, dict(lr=1e-2, betas=(0.3, 0.9), eps=1e-6)),   # lerp's other form
    ("adamw", net.AdamW, torch.optim.AdamW, dict(lr=1e-2)),
    ("adamw-amsgrad", net.AdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("rmsprop", net.RMSprop, torch.optim.RMSprop, dict(lr=1e-2)),
    ("rmsprop-momentum-wd", net.RMSprop, torch.optim.RMSprop, dict(lr=1e-2, momentum=0.9, weight_decay=1e-2)),
    ("rmsprop-centered", net.RMSprop, torch.optim.RMSprop, dict(lr=1e-2, centered=True)),
    ("rmsprop-centered-momentum", net.RMSprop, torch.optim.RMSprop,
     dict(lr=1e-3, alpha=0.3, centered=True, momentum=0.5)),
    ("adagrad", net.Adagrad, torch.optim.Adagrad, dict(lr=0.1)),
    ("adagrad-decay-wd-init", net.Adagrad, torch.optim.Adagrad,
     dict(lr=0.1, lr_decay=0.05, weight_decay=1e-2, initial_accumulator_value=0.1, eps=1e-8)),
]

#: (id, ours, torch's, keyword arguments)
SCHEDULES = [
    ("constant", None, None, {}),
    ("step", net.StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=5, gamma=0.5)),
    ("exponential", net.ExponentialLR, torch.optim.lr_scheduler.ExponentialLR, dict(gamma=0.9)),
    ("cosine", net.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, dict(T_max=7, eta_min=1e-4)),
    ("linear", net.LinearLR, torch.optim.lr_scheduler.LinearLR, dict(start_factor=0.25, total_iters=6)),
]

#: our buffer name -> torch's state key
STATE_KEYS = {"velocity": "momentum_buffer", "exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq",
              "max_exp_avg_sq": "max_exp_avg_sq", "square_avg": "square_avg", "grad_avg": "grad_avg",
              "momentum_buffer": "momentum_buffer", "state_sum": "sum"}


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=_ids(SCHEDULES))
@pytest.mark.parametrize("case", OPTIMIZERS, ids=_ids(OPTIMIZERS))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_steps_match_torch(backend, dtype, case, schedule):
    _, ours_cls, torch_cls, kwargs = case
    _, ours_sched, torch_sched, sched_kwargs = schedule
    rng = np.random.default_rng(7)
    layer = Linear(5, 4, backend=backend, dtype=dtype, rng=0)
    layer.params["b"][:] = rng.standard_normal(4)
    model = Sequential(layer)
    params = model.parameters()
    theirs = [torch.tensor(p.value.copy(), requires_grad=True) for p in params]
    opt = ours_cls(params, **kwargs)
    ref = torch_cls(theirs, foreach=False, **kwargs)
    sched = ours_sched(opt, **sched_kwargs) if ours_sched else None
    ref_sched = torch_sched(ref, **sched_kwargs) if torch_sched else None
    assert opt.lr == ref.param_groups[0]["lr"]
    for step in range(1, STEPS + 1):
        for p, t in zip(params, theirs):
            g = rng.standard_normal(p.value.shape).astype(dtype)
            p.layer.grads[p.name] = g
            t.grad = torch.tensor(g.copy())
        opt.step()
        ref.step()
        for p, t in zip(params, theirs):
            assert p.value.dtype == np.dtype(dtype)
            np.testing.assert_allclose(p.value, t.detach().numpy(), **TOL[dtype], err_msg=f"{p.name} after step {step}")
        if sched is not None:
            sched.step()
            ref_sched.step()
            assert sched.get_last_lr() == ref_sched.get_last_lr(), f"lr after step {step}"
            assert opt.lr == ref.param_groups[0]["lr"]
    for name in opt._buffers:
        ours = getattr(opt, name)
        key = STATE_KEYS[name]
        present = [key in ref.state[t] for t in theirs]
        if ours is None or not any(present):
            assert not any(present) or name == "state_sum", f"torch keeps {key}, we do not"
            continue
        for buf, t in zip(ours, theirs):
            np.testing.assert_allclose(buf, ref.state[t][key].numpy(), **TOL[dtype], err_msg=name)


@pytest.mark.parametrize("schedule", SCHEDULES[1:], ids=_ids(SCHEDULES[1:]))
def test_lr_sequences_equal_torchs_over_many_epochs(schedule):
    """float64 learning rates, exactly equal, over 60 epochs (cosine past T_max: back up again)."""
    _, ours_sched, torch_sched, kwargs = schedule
    layer = Linear(2, 2, dtype=np.float64)
    opt = net.SGD(Sequential(layer).parameters(), lr=0.3)
    ref = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    sched, ref_sched = ours_sched(opt, **kwargs), torch_sched(ref, **kwargs)
    assert sched.get_last_lr() == ref_sched.get_last_lr()
    for epoch in range(60):
        ref.step()
        sched.step()
        ref_sched.step()
        assert sched.get_last_lr() == ref_sched.get_last_lr(), f"epoch {epoch}"
        assert sched.last_epoch == ref_sched.last_epoch


def test_torch_default_linear_init_has_torchs_bounds():
    """``init="torch_default"``: W and b in +-1/sqrt(in_features), as nn.Linear's reset_parameters."""
    layer = Linear(300, 200, init="torch_default", rng=0, dtype=np.float64)
    ref = torch.nn.Linear(300, 200, dtype=torch.float64)
    bound = 1 / np.sqrt(300)
    for ours, theirs in ((layer.params["W"], ref.weight.detach().numpy()), (layer.params["b"], ref.bias.detach().numpy())):
        assert np.abs(theirs).max() <= bound and np.abs(ours).max() <= bound
        assert np.abs(ours).max() > 0.95 * bound
