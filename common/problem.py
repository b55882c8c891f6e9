"""One training problem, whole: what every driver trains, every check compares on, and a run in stretches slices.

A Problem holds the configuration, the initial parameters, the data, and the random arrays every backend is handed
(no backend draws its own): the minibatch orders and the dropout masks of every epoch, the masks drawn from the
seed when first asked for (common/initializers.py). stretch(start, stop) is the same problem for some of its
epochs, as the report trains it between checkpoints.
"""

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from .initializers import dropout_masks


def batches(n_samples, batch_size):
    """[(start, stop), ...] slices of one epoch's order; the last batch may be smaller."""
    if batch_size is None:
        return [(0, n_samples)]
    return [(start, min(start + batch_size, n_samples)) for start in range(0, n_samples, batch_size)]


def schedule(config, n_samples, orders=None, masks=None):
    """Every step of a run, in order, as the harness's own training loops take them (the adapters', the frameworks'
    oracles'): (epoch, s, rows, noise, done) with rows the step's samples (slice(None) for full batch, else its
    slice of the epoch's order), noise each dropout layer's mask for the step, and done the epochs finished after the
    step (epoch + 1 at an epoch's last step, else 0: `if done in checkpoints`). The backends' own mlp.train loops
    stay written out, mirrored: they are code under check, where the catalogue plants a loop's mistakes."""
    steps = batches(n_samples, config.batch_size)
    for epoch in range(config.epochs):
        for s, (start, stop) in enumerate(steps):
            rows = slice(None) if orders is None else orders[epoch, start:stop]
            noise = None if masks is None else [m[epoch, s, :stop - start] for m in masks]
            yield epoch, s, rows, noise, epoch + 1 if s == len(steps) - 1 else 0


def epochs_of(orders, masks, start, stop):
    """(orders, masks) of epochs [start, stop) of a run's: any array type (NumPy, torch, JAX), None kept."""
    return (None if orders is None else orders[start:stop]), (None if masks is None else [m[start:stop] for m in masks])


@dataclass(frozen=True)
class Problem:
    """config (its epochs: the problem's length), params (the initial parameters, [(leaf, ...)] per layer), X, y;
    orders, (epochs, N) sample orders, or None for full batch; masks, each dropout layer's keep masks for these
    epochs, or None to draw them from config.seed (read them as noise)."""

    config: Any
    params: list
    X: Any
    y: Any
    orders: Any = None
    masks: Any = None

    @cached_property
    def noise(self):
        """The dropout layers' keep masks for the problem's epochs, (epochs, steps, batch, width) each: those given,
        else drawn from the seed once; None for a model without dropout."""
        return self.masks if self.masks is not None else dropout_masks(self.config, len(self.X))

    def stretch(self, start, stop):
        """The problem for epochs [start, stop) of this one: its orders and masks, the same data."""
        orders, masks = epochs_of(self.orders, self.noise, start, stop)
        return replace(self, config=self.config.replace(epochs=stop - start), orders=orders, masks=masks)

    def pieces(self):
        """(config, params, X, y, orders): for the functions that take arrays."""
        return self.config, self.params, self.X, self.y, self.orders

    @property
    def steps(self):
        """The batches of one epoch, [(start, stop), ...]."""
        return batches(len(self.X), self.config.batch_size)
