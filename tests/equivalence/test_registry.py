"""The registry, the contract and both backends stay in step with ``kernels.OPERATIONS``."""
import inspect

import numpy as np
import pytest

import kernels
from kernels import contract, fused, fused_minibatch, get_backend
from kernels.registry import OPERATIONS, Operation, operation


def test_registry_covers_every_operation_and_nothing_else():
    registered, names = {op.name for op in OPERATIONS}, set(kernels.OPERATIONS)
    assert not names - registered, f"not in the registry: {names - registered}"
    assert not registered - names, f"not in kernels.OPERATIONS: {registered - names}"
    ids = [op.id for op in OPERATIONS]
    assert len(ids) == len(set(ids)), "two registry entries share an id"


@pytest.mark.parametrize("name", kernels.OPERATIONS)
def test_both_backends_expose_the_operation_with_one_signature_and_one_contract(name):
    ref, jit = getattr(get_backend("numpy"), name), getattr(get_backend("numba"), name)
    assert callable(ref) and callable(jit)
    assert inspect.signature(jit) == inspect.signature(ref), f"{name}: numba {inspect.signature(jit)} != numpy " \
                                                             f"{inspect.signature(ref)}"
    assert list(inspect.signature(ref).parameters) == list(contract.SPECS[name])
    for fn in (ref, jit):                       # both go through kernels.contract.kernel
        assert hasattr(fn, "full_check") and fn.__wrapped__.__name__ == name


def test_the_fused_kernels_have_the_signatures_of_their_numpy_twins():
    assert inspect.signature(fused.sgd_epoch) == inspect.signature(get_backend("numpy").sgd_epoch)
    assert inspect.signature(fused_minibatch.sgd_minibatch_epoch) == \
        inspect.signature(get_backend("numpy").sgd_minibatch_epoch)


def test_the_contract_covers_exactly_the_operations():
    assert set(contract.SPECS) == set(kernels.OPERATIONS)


def test_unknown_operation_lists_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown operation 'nope'; known: matmul_naive, matmul"):
        operation("nope")


def test_an_in_place_operation_cannot_be_benchmarked_on_shared_arguments():
    with pytest.raises(ValueError, match="updates its arguments in place"):
        Operation("sgd_epoch", ("B",), lambda *a: (), mutates=(0,), bench_sizes=({"B": 1},))


def test_keyword_arguments_go_through_the_same_check():
    for backend in kernels.BACKENDS:
        ops = get_backend(backend)
        p = np.full((2, 3), 1 / 3)
        np.testing.assert_allclose(ops.cross_entropy(p, y=np.array([0, 2]), eps=1e-9), np.log(3))
        with pytest.raises(TypeError, match="cross_entropy: 1-D y must hold integer class labels"):
            ops.cross_entropy(p=p, y=np.array([0.0, 2.0]))
        with pytest.raises(TypeError, match="missing a required argument: 'y'"):
            ops.cross_entropy(p)
