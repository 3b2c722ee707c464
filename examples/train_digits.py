"""Train the generated digits MLP (examples/mlp_digits.toml: 64-32-10, tanh, softmax
cross-entropy, L2) on scikit-learn's bundled 8×8 digit images, with seed 003's SGD.

    pip install 'symbp[examples]'                 # scikit-learn and matplotlib
    symbp generate examples/mlp_digits.toml       # -> generated/mlp_digits.py
    python examples/train_digits.py               # -> train_digits/params.npz, history.png

The 1797 images ship inside scikit-learn (``load_digits``): nothing is downloaded. A stratified
quarter is held out as the test set, and the pixels (0 to 16) are scaled to [0, 1]. Every run
with the same --seed gives the same numbers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import symbp
from symbp import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", type=Path, default=Path("generated/mlp_digits.py"))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0, help="initial weights and shuffling")
    parser.add_argument("--out", type=Path, default=Path("train_digits"), help="output folder")
    parser.add_argument("--force", action="store_true", help="overwrite files symbp did not write")
    args = parser.parse_args(argv)
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        from symbp.train.plot import plot_history
    except ImportError as err:
        sys.exit(f"train_digits: needs {err.name}: pip install 'symbp[examples]'")
    if not args.module.is_file():
        sys.exit(f"train_digits: no {args.module}; run: symbp generate examples/mlp_digits.toml")
    started = time.perf_counter()

    net = symbp.load_module(args.module)  # runs only if its symbp header verifies
    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data / 16.0, digits.target, test_size=0.25, stratify=digits.target, random_state=0
    )
    entries = sum(int(np.prod(shape)) for shape in net.PARAM_SHAPES.values())
    print(
        f"digits: {len(X_train)} training and {len(X_test)} test images of 8x8 pixels; "
        f"mlp_digits: {entries:,} parameters"
    )

    rng = np.random.default_rng(args.seed)
    params, history = train.fit(
        net,
        net.init_params(rng=rng),
        (X_train, y_train),  # integer labels: the module turns them into one-hot rows
        epochs=args.epochs,
        batch_size=32,
        lr=0.05,
        momentum=0.9,
        rng=rng,
        validation=(X_test, y_test),
    )
    trained = sum(e.seconds for e in history)

    saved = train.save(args.out / "params.npz", params, force=args.force)
    reloaded = train.load(saved, net)  # names and shapes checked against the module
    accuracy = train.accuracy(net.predict(reloaded, X_test), y_test)
    right = round(accuracy * len(y_test))
    plot_history(history, args.out / "history.png", title="mlp_digits", force=args.force)
    print(
        f"test accuracy {accuracy:.2%} ({right} of {len(y_test)}) after {args.epochs} epochs: "
        f"{trained:.2f} s of training, {time.perf_counter() - started:.2f} s in all"
    )
    print(f"wrote {saved} and {args.out / 'history.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
