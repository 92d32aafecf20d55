"""Plain numpy (float64) transcriptions of the published optimizer update rules.

Written from the algorithm boxes of the torch.optim documentation (SGD,
RMSprop, Adam, AdamW) and torch.nn.utils.clip_grad_norm_, one whole-array
operation per line, with no attempt at speed.  Each class keeps its own
float64 copy of the parameters and state; ``step(grad)`` applies one update
and returns the new parameters.  Hyper-parameters are plain attributes (tests
change ``lr`` between steps).
"""
import numpy as np


def _f64(x):
    return np.array(x, dtype=np.float64)


class SGD:
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False):
        self.params = _f64(params)
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov, self.maximize = weight_decay, nesterov, maximize
        self.momentum_buffer = None
        self.t = 0

    def step(self, grad):
        self.t += 1
        g = _f64(grad)
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            g = g + self.weight_decay * self.params
        if self.momentum != 0:
            if self.t == 1:
                self.momentum_buffer = g.copy()
            else:
                self.momentum_buffer = self.momentum * self.momentum_buffer + (1 - self.dampening) * g
            if self.nesterov:
                g = g + self.momentum * self.momentum_buffer
            else:
                g = self.momentum_buffer
        self.params = self.params - self.lr * g
        return self.params


class RMSprop:
    def __init__(self, params, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        self.params = _f64(params)
        self.lr, self.alpha, self.eps = lr, alpha, eps
        self.weight_decay, self.momentum, self.centered = weight_decay, momentum, centered
        self.square_avg = np.zeros_like(self.params)
        self.grad_avg = np.zeros_like(self.params)
        self.momentum_buffer = np.zeros_like(self.params)

    def step(self, grad):
        g = _f64(grad)
        if self.weight_decay != 0:
            g = g + self.weight_decay * self.params
        self.square_avg = self.alpha * self.square_avg + (1 - self.alpha) * g * g
        v = self.square_avg
        if self.centered:
            self.grad_avg = self.alpha * self.grad_avg + (1 - self.alpha) * g
            v = v - self.grad_avg ** 2
        denom = np.sqrt(v) + self.eps
        if self.momentum > 0:
            self.momentum_buffer = self.momentum * self.momentum_buffer + g / denom
            self.params = self.params - self.lr * self.momentum_buffer
        else:
            self.params = self.params - self.lr * g / denom
        return self.params


class Adam:
    """Adam without amsgrad; ``decoupled=True`` is AdamW."""

    decoupled = False

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = _f64(params)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.exp_avg = np.zeros_like(self.params)
        self.exp_avg_sq = np.zeros_like(self.params)
        self.t = 0

    def step(self, grad):
        self.t += 1
        beta1, beta2 = self.betas
        g = _f64(grad)
        if self.decoupled:
            self.params = self.params * (1 - self.lr * self.weight_decay)
        elif self.weight_decay != 0:
            g = g + self.weight_decay * self.params
        self.exp_avg = beta1 * self.exp_avg + (1 - beta1) * g
        self.exp_avg_sq = beta2 * self.exp_avg_sq + (1 - beta2) * g * g
        m_hat = self.exp_avg / (1 - beta1 ** self.t)
        v_hat = self.exp_avg_sq / (1 - beta2 ** self.t)
        self.params = self.params - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return self.params


class AdamW(Adam):
    decoupled = True


def state_rows(opt):
    """The reference's state in the kernel's (rows, P) layout."""
    if isinstance(opt, SGD):
        buf = opt.momentum_buffer if opt.momentum_buffer is not None else np.zeros_like(opt.params)
        return np.stack([buf])
    if isinstance(opt, RMSprop):
        return np.stack([opt.square_avg, opt.momentum_buffer, opt.grad_avg])
    return np.stack([opt.exp_avg, opt.exp_avg_sq])


def total_norm(grads, norm_type):
    g = np.abs(_f64(grads))
    if norm_type == np.inf:
        return float(g.max()) if g.size else 0.0
    return float(np.sum(g ** norm_type) ** (1.0 / norm_type))


def clip_grad_norm(grads, max_norm, norm_type=2.0):
    """Returns (clipped grads as float64, total norm)."""
    total = total_norm(grads, norm_type)
    coef = max_norm / (total + 1e-6)
    g = _f64(grads)
    return (g * coef if coef < 1 else g), total
