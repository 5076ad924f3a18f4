"""Hogwild vs exact 2-thread per-sample SGD on the tutorial network (one epoch of Fashion-MNIST).

    python -m bench.hogwild

Hogwild: two threads run the single-thread fused kernel on interleaved halves of the
epoch, updating the shared weights without locks (Niu et al. 2011).  Exact: the row-split
kernel that ``fit(..., threads=2)`` uses.  Prints samples/s and test accuracy for each, and
the machine's cache sizes and load average (the exact split meets at a spin barrier after
every layer, so another job on the second core slows it far more than Hogwild).
"""
import argparse
import os
import threading
import time

import numpy as np

from net import CrossEntropyLoss, Linear, Sequential, Sigmoid, metrics, predict
from net.data import fashion_mnist
from net.fused import plan


def tutorial_model():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(784, 512, rng=rng), Sigmoid(), Linear(512, 512, rng=rng), Sigmoid(),
                       Linear(512, 10, rng=rng))
    model.backend = "numba"
    return model


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    from bench.machine import cpu_model
    from kernels.cachesize import cache_lines
    print(f"{cpu_model()}, {os.cpu_count()} cores, {', '.join(cache_lines())}; "
          f"load average {os.getloadavg()[0]:.2f} before the run")
    X, y, X_test, y_test = fashion_mnist()
    warm = plan(tutorial_model(), CrossEntropyLoss(), batch_size=1)
    labels, targets = warm.targets(y)
    warm.run(X, labels, targets, np.arange(2), 1e-4)
    warm.run(X, labels, targets, np.arange(2), 1e-4, threads=2)
    order = np.arange(X.shape[0])
    for mode in ("sequential", "hogwild, 2 threads", "exact, 2 threads"):
        model = tutorial_model()
        p = plan(model, CrossEntropyLoss(), batch_size=1)
        t0 = time.perf_counter()
        if mode == "sequential":
            p.run(X, labels, targets, order, 0.02)
        elif mode.startswith("exact"):
            p.run(X, labels, targets, order, 0.02, threads=2)
        else:
            pool = [threading.Thread(target=p.run, args=(X, labels, targets, half, 0.02))
                    for half in (order[0::2], order[1::2])]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
        rate = order.size / (time.perf_counter() - t0)
        acc = metrics.accuracy(predict(model, X_test), y_test)
        print(f"{mode:20s} {rate:8,.0f} samples/s   test accuracy {100 * acc:.2f}%")


if __name__ == "__main__":
    main()
