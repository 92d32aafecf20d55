"""The check shared by the fused-step tests: ``train_step`` against the separate calls."""
import numpy as np


def step_fused_and_split(fused, split, opt_f, opt_s, loss_fn, x, y):
    """One ``train_step`` of ``fused`` and forward, loss, backward and ``opt.step()`` on
    ``split``; asserts the same bits (loss, parameters, gradients, optimizer and model state)."""
    value_f = fused.train_step(x, y, loss_fn, opt_f)
    value_s, dout = loss_fn(split.forward(x), y)
    split.backward(dout)
    opt_s.step()
    assert value_f == value_s
    np.testing.assert_array_equal(fused.parameters().params, split.parameters().params)
    np.testing.assert_array_equal(fused.parameters().grads, split.parameters().grads)
    np.testing.assert_array_equal(opt_f.state, opt_s.state)
    np.testing.assert_array_equal(fused.state.params, split.state.params)
