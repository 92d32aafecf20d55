"""Vanishing gradients, seen: a 20-layer MLP on the digits with sigmoid, ReLU, and ReLU + BatchNorm.

For each network it prints the gradient norm of every Linear layer at
initialisation (first layer to last) and the held-out accuracy after training.
With matplotlib installed (``pip install "fastbp[plot]"``) it also saves
``vanishing_gradients.png``, the per-layer norms on a log scale.

    python examples/vanishing_gradients.py [--epochs 15] [--plot out.png]
"""
import argparse

import numpy as np

import fastbp as fb

DEPTH, WIDTH = 20, 64
CONFIGS = [("sigmoid", dict(activation="sigmoid")),
           ("relu", dict(activation="relu")),
           ("relu + batchnorm", dict(activation="relu", batchnorm=True))]


def linear_norms(norms):
    """Only the Linear layers' norms, first to last."""
    return np.array([v for k, v in norms.items() if "Linear" in k.split(":", 1)[1].split("(")[0]])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--plot", default="vanishing_gradients.png")
    args = parser.parse_args(argv)
    X, y = fb.data.load_digits()
    Xtr, Xte, ytr, yte = fb.data.train_test_split(X, y, test_size=0.2, seed=0)
    sizes = [64] + [WIDTH] * (DEPTH - 1) + [10]
    results = {}
    for name, kw in CONFIGS:
        model = fb.MLP(sizes, seed=0, **kw)
        at_init = linear_norms(fb.diagnostics.gradient_norms(model, Xtr[:256], ytr[:256]))
        model.fit(Xtr, ytr, optimizer=fb.optim.Adam(model.parameters(), lr=1e-3), epochs=args.epochs,
                  batch_size=64, seed=0)
        acc = model.evaluate(Xte, yte)["accuracy"]
        results[name] = (at_init, acc)
        print(f"{name:>17}: test accuracy {acc:.3f}; |dL/dW| at init, layer 1 → {DEPTH}: "
              f"{at_init[0]:.1e} … {at_init[DEPTH // 2]:.1e} … {at_init[-1]:.1e} "
              f"(first/last = {at_init[0] / at_init[-1]:.1e})")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('matplotlib is not installed: pip install "fastbp[plot]" for the plot')
        return results
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, (norms, acc) in results.items():
        ax.semilogy(range(1, DEPTH + 1), norms, marker="o", label=f"{name} (test acc {acc:.2f})")
    ax.set_xlabel("Linear layer (1 = input side)")
    ax.set_ylabel("‖∂L/∂W‖ at initialisation")
    ax.set_title(f"{DEPTH}-layer MLP on the 8×8 digits")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)
    print(f"saved {args.plot}")
    return results


if __name__ == "__main__":
    main()
