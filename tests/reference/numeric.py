"""Central differences, the reference every gradient test compares against (float64)."""
import numpy as np


def central_difference(f, x, eps=1e-6):
    """∂f()/∂x by central differences: perturbs ``x`` in place, one element at a time, and restores it."""
    flat = x.reshape(-1)
    assert np.shares_memory(flat, x), "x must be contiguous so that its elements can be perturbed in place"
    grad = np.empty(flat.size)
    for k in range(flat.size):
        keep = flat[k]
        flat[k] = keep + eps
        up = f()
        flat[k] = keep - eps
        down = f()
        flat[k] = keep
        grad[k] = (up - down) / (2 * eps)
    return grad.reshape(x.shape)
