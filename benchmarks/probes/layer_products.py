"""A workload's layer products on copies of the operands, for probes that time them apart
from the training step (``w4_pieces.py``, ``step_sequence.py``): the model's own weights,
random activations and deltas, in the step's order."""
import numpy as np

from fastbp.kernels import gemm
from fastbp.kernels.codes import RELU


def layer_products(model, widths, batch, work):
    """``(forward, backward, numpy_forward, numpy_backward)``, four callables.

    ``forward``: ``X Wᵀ`` with bias + ReLU, layer by layer.  ``backward``: ``dW = Dᵀ A``
    and ``dA = D W`` from the last layer down (no input gradient for the first).  The numpy
    pair runs the same products through OpenBLAS's sgemm."""
    Ws = [layer.weight for layer in model.layers if hasattr(layer, "weight")]
    bs = [layer.bias for layer in model.layers if hasattr(layer, "weight")]
    rng = np.random.default_rng(0)
    acts = [rng.standard_normal((batch, w)).astype(np.float32) for w in widths]
    Zs = [np.empty((batch, w), np.float32) for w in widths[1:]]
    Ds = [rng.standard_normal((batch, w)).astype(np.float32) for w in widths[1:]]
    dWs = [np.empty_like(W) for W in Ws]
    dAs = [np.empty((batch, w), np.float32) for w in widths[:-1]]

    def forward():
        for i, W in enumerate(Ws):
            gemm.matmul_nt_bias_act(acts[i], W, bs[i], RELU, np.float32(0), work, Zs[i], acts[i + 1])

    def backward():
        for i in range(len(Ws) - 1, -1, -1):
            if i > 0:
                gemm.backward_grads(Ds[i], acts[i], Ws[i], work, dWs[i], dAs[i])
            else:
                gemm.matmul_tn(Ds[i], acts[i], work, dWs[i])

    def numpy_forward():
        for i, W in enumerate(Ws):
            np.matmul(acts[i], W.T, out=Zs[i])

    def numpy_backward():
        for i in range(len(Ws) - 1, -1, -1):
            np.matmul(Ds[i].T, acts[i], out=dWs[i])
            if i > 0:
                np.matmul(Ds[i], Ws[i], out=dAs[i])

    return forward, backward, numpy_forward, numpy_backward
