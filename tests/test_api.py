"""The public surface promised in the README."""
import subprocess
import sys


def test_documented_imports():
    code = ("from net import Linear, ReLU, Sigmoid, Softmax, Sequential, SGD, CrossEntropyLoss, MSELoss\n"
            "import net\n"
            "net.io.save, net.io.load, net.data.fashion_mnist, net.data.mnist, net.plot.sample_grid\n"
            "net.metrics.accuracy, net.init.xavier_normal, net.gradcheck, net.fit, net.set_backend\n"
            "import kernels; kernels.get_backend('numba').softmax\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
