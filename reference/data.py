"""Data sets: the seeds' XOR, and synthetic problems drawn from a seed."""

import math

import numpy as np

from common import registry


def xor(dtype="float64"):
    """The XOR truth table as (X (4, 2), y (4, 1)), rows in the seeds' order."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return X, y


ALPHABET = " .abcdefgh"  # the generated text's characters; a character's id is its position


def text(n_chars, seed):
    """n_chars characters of a toy language drawn from seed: sentences of 3 to 7 words ended by '. ', words of 2 to 6
    letters a-h whose last letter repeats their first (a dependency up to 5 steps back), separated by spaces."""
    rng = np.random.default_rng([seed, 4])
    letters, out, length = ALPHABET[2:], [], 0  # out: the sentences so far, length characters
    while length < n_chars:
        words = []
        for _ in range(rng.integers(3, 8)):
            first, middle = letters[rng.integers(len(letters))], rng.choice(list(letters), rng.integers(0, 5))
            words.append(first + "".join(middle) + first)
        out.append(" ".join(words) + ". ")
        length += len(out[-1])
    return "".join(out)[:n_chars]


def char_windows(config, n_samples, seed=None):
    """(X, y) for a character-level model: X (n_samples, T) int64 ids of T consecutive characters of text(), y the
    next character, one-hot over ALPHABET (the model's output width must be len(ALPHABET)); for a model that scores
    every step, y (n_samples, T, len(ALPHABET)) holds the character after each one."""
    (steps,) = config.sample_shape
    if config.layers[-1] != len(ALPHABET):
        raise ValueError(f"the generated text has {len(ALPHABET)} characters ({ALPHABET!r}): a character model's "
                         f"output width must be {len(ALPHABET)}, got {config.layers[-1]}")
    ids = np.array([ALPHABET.index(c) for c in text(n_samples + steps, config.seed if seed is None else seed)])
    X = np.stack([ids[i:i + steps] for i in range(n_samples)]).astype(np.int64)
    one_hot = np.eye(len(ALPHABET), dtype=config.dtype)
    if len(config.output_shape) == 2:  # the next character after each step
        return X, one_hot[np.stack([ids[i + 1:i + steps + 1] for i in range(n_samples)])]
    return X, one_hot[ids[steps:steps + n_samples]]


def synthetic(config, n_samples, seed=None):
    """(X, y) with X ~ N(0, 1) and targets fitting config's loss, from seed (default config.seed); for a model that
    reads ids (an embedding first), windows of a generated text instead (char_windows).

    Targets come from a random linear teacher, in the loss's target domain (common/registry.py):
    one-hot class labels, 0/1 labels, or real values in the output activation's range.
    """
    if registry.LAYERS[config.model[0].kind].ids:
        return char_windows(config, n_samples, seed)
    rng = np.random.default_rng([config.seed if seed is None else seed, 2])
    n_in, n_out = math.prod(config.sample_shape), math.prod(config.output_shape)
    X = rng.standard_normal((n_samples, *config.sample_shape))
    # Images: a teacher of their pixels; per-step outputs: of the whole sequence, for every step.
    scores = (X.reshape(n_samples, n_in) @ rng.standard_normal((n_in, n_out))).reshape(n_samples, *config.output_shape)
    targets, outputs = registry.LOSSES[config.loss].targets, registry.ACTIVATIONS[config.output].outputs
    if targets == "one_hot":
        y = np.eye(config.output_shape[-1])[scores.argmax(axis=-1)]
    elif targets == "labels":
        y = (scores > 0).astype(float)
    elif outputs == "unit":
        y = 1 / (1 + np.exp(-scores))
    elif outputs == "signed":
        y = np.tanh(scores)
    else:
        y = scores
    return X.astype(config.dtype), y.astype(config.dtype)
