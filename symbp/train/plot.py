"""The picture of a training run: loss and accuracy by epoch, training and validation.

Needs matplotlib (``pip install 'symbp[plot]'``). The figure is made without pyplot, so it
leaves no global state behind (a notebook shows the returned figure); a PNG is written
atomically under symbp's header, like ``symbp report --plot``'s.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from symbp.files import OutputError, write_all
from symbp.provenance import stamp_png
from symbp.train import Epoch


def plot_history(
    history: Sequence[Epoch], path: str | Path | None = None, *, title: str = "", force=False
):
    """A matplotlib Figure of ``history`` (from :func:`symbp.train.fit`): the loss on the left,
    the accuracy on the right (where the model is a classifier). With ``path`` (a .png), it is
    also written there; a file symbp did not write, or one edited since, only with ``force``."""
    from matplotlib.figure import Figure

    if not history:
        raise ValueError("the history is empty: train for at least one epoch")
    classifier = history[0].accuracy is not None
    figure = Figure(figsize=(9 if classifier else 5, 3.6), layout="constrained")
    axes = figure.subplots(1, 2 if classifier else 1, squeeze=False)[0]
    epochs = [e.epoch for e in history]
    panels = [("loss", "loss", "val_loss")]
    if classifier:
        panels.append(("accuracy", "accuracy", "val_accuracy"))
    for ax, (label, train_key, val_key) in zip(axes, panels, strict=True):
        ax.plot(epochs, [getattr(e, train_key) for e in history], marker=".", label="training")
        held = [getattr(e, val_key) for e in history]
        if held[0] is not None:
            ax.plot(epochs, held, marker=".", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    if path is not None:
        path = Path(path)
        if path.suffix != ".png":
            raise ValueError(f"{path}: the plot is written as a .png file; name one")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
        try:
            write_all({path: stamp_png(buffer.getvalue())}, force=force)
        except OutputError as err:  # the library's word for the command's flag
            raise OutputError(str(err).replace("--force", "force=True")) from None
    return figure
