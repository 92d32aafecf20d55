"""Integer codes shared by the kernels and the Python layer (plain ints, Numba folds them)."""

# activations: fastbp.kernels.activations
IDENTITY = 0
RELU = 1
LEAKY_RELU = 2    # alpha = negative_slope
ELU = 3           # alpha = alpha
GELU = 4          # exact, erf form
GELU_TANH = 5     # tanh approximation
SILU = 6
SIGMOID = 7
TANH = 8
SOFTPLUS = 9      # beta = 1, threshold = 20, as torch.nn.Softplus

ACTIVATION_CODES = {
    "identity": IDENTITY, "relu": RELU, "leaky_relu": LEAKY_RELU, "elu": ELU,
    "gelu": GELU, "gelu_tanh": GELU_TANH, "silu": SILU, "sigmoid": SIGMOID,
    "tanh": TANH, "softplus": SOFTPLUS,
}

# losses: fastbp.kernels.losses
MSE = 0
L1 = 1
HUBER = 2             # param = delta
CROSS_ENTROPY = 3     # integer labels, param = label_smoothing
BCE_WITH_LOGITS = 4

# optimizers: fastbp.kernels.optim (hyper-parameter layouts there)
SGD = 0
RMSPROP = 1
ADAM = 2
ADAMW = 3
