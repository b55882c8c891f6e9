"""Data sets: the seeds' XOR, and synthetic problems drawn from a seed."""

import math
import os

import numpy as np

from crosscheck.common import registry


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


def char_windows(config, n_samples, seed=None, chars=None, where="the generated text"):
    """(X, y) for a character-level model: X (n_samples, T) int64 ids of T consecutive characters of text() (or of
    chars, a text of the user's, its characters' ids their places in its sorted alphabet), y the next character,
    one-hot over the alphabet (the model's output width must be the alphabet's size); for a model that scores every
    step, y (n_samples, T, vocabulary) holds the character after each one."""
    (steps,) = config.sample_shape
    alphabet = ALPHABET if chars is None else "".join(sorted(set(chars)))
    if config.layers[-1] != len(alphabet):
        raise ValueError(f"{where} has {len(alphabet)} distinct characters ({alphabet!r}): a character model's "
                         f"output width must be {len(alphabet)}, got {config.layers[-1]}")
    vocabulary = config.model[0].shape[0]
    padded = any(layer.kind == "vocabulary" for layer in config.model)  # rows past the alphabet: padding, never read
    if vocabulary != len(alphabet) and not (padded and vocabulary > len(alphabet)):
        raise ValueError(f"{where} has {len(alphabet)} distinct characters ({alphabet!r}): the embedding's vocabulary "
                         f"must be {len(alphabet)}" + (" or more (padded)" if padded else "") + f", got {vocabulary}")
    if chars is None:
        chars = text(n_samples + steps, config.seed if seed is None else seed)
    elif len(chars) < n_samples + steps:
        raise ValueError(f"{where} has {len(chars)} characters: {n_samples} windows of {steps} and the character after "
                         f"each need {n_samples + steps}")
    ids = np.array([alphabet.index(c) for c in chars[:n_samples + steps]])
    X = np.stack([ids[i:i + steps] for i in range(n_samples)]).astype(np.int64)
    one_hot = np.eye(len(alphabet), dtype=config.dtype)
    if len(config.output_shape) == 2:  # the next character after each step
        return X, one_hot[np.stack([ids[i + 1:i + steps + 1] for i in range(n_samples)])]
    return X, one_hot[ids[steps:steps + n_samples]]


DATASETS = {"digits": "scikit-learn's bundled 8x8 digits: 1797 images of 64 pixels scaled to [0, 1], 10 classes",
            "iris": "scikit-learn's bundled iris: 150 flowers, 4 measurements standardised, 3 classes"}


def load(spec, config, n_samples=None):
    """(X, y) from spec, checked against config, the first n_samples rows (windows) or all:

    - 'digits' or 'iris': scikit-learn's bundled copies (no download), classes one-hot;
    - FILE.npz: arrays X and y as they are (ids as integers for a model that reads them);
    - FILE.csv: numbers, an optional header; the inputs' columns, then the targets' (or one column of integer class
      labels 0..K-1, made one-hot, where the loss takes one-hot targets);
    - FILE.txt: a character model's text (an embedding first): windows of the model's T characters, the next one the
      target, each character's id its place in the sorted set of the text's characters.

    Raises ValueError, one line naming the file and what is wrong, before anything trains."""
    if spec in DATASETS:
        X, y = _bundled(spec)
    elif spec.endswith(".txt"):
        if not registry.LAYERS[config.model[0].kind].ids:
            raise ValueError(f"--data {spec}: a text is for a character model (one that begins with an embedding), "
                             f"but this model begins with {config.model[0].kind}")
        chars = _read(spec)
        (steps,) = config.sample_shape
        n = len(chars) - steps if n_samples is None else n_samples
        return char_windows(config, n, chars=chars, where=f"--data {spec}")
    elif spec.endswith(".npz"):
        X, y = _read(spec)
    elif spec.endswith(".csv"):
        table, _ = _read(spec)
        n_in, n_out = math.prod(config.sample_shape), math.prod(config.output_shape)
        labels = registry.LOSSES[config.loss].targets == "one_hot" and table.shape[1] == n_in + 1
        if table.shape[1] != n_in + n_out and not labels:
            raise ValueError(f"--data {spec}: {table.shape[1]} columns, but the model reads {n_in} inputs and gives "
                             f"{n_out} outputs: {n_in + n_out} columns (or {n_in + 1}, the last a class label)")
        X = table[:, :n_in].reshape(len(table), *config.sample_shape)
        y = table[:, n_in] if labels else table[:, n_in:].reshape(len(table), *config.output_shape)
    else:
        raise ValueError(f"--data {spec}: not a data set this knows ({', '.join(DATASETS)}) nor a .npz, .csv or .txt "
                         f"file")
    return _fitted(spec, X, y, config, n_samples)


def _fitted(spec, X, y, config, n_samples):
    """X and y checked against config (shapes, dtypes, finiteness, labels) and cast to its dtype."""
    ids = registry.LAYERS[config.model[0].kind].ids
    if y.ndim == 1 and registry.LOSSES[config.loss].targets == "one_hot":  # class labels
        if not np.all((y == np.round(y)) & (y >= 0)) or y.max() >= config.output_shape[-1]:
            raise ValueError(f"--data {spec}: class labels must be integers 0 to {config.output_shape[-1] - 1} (the "
                             f"model's {config.output_shape[-1]} outputs), got {np.unique(y)[:8].tolist()}")
        y = np.eye(config.output_shape[-1])[y.astype(np.int64)]
    elif y.ndim == 1:
        y = y[:, None]
    if tuple(X.shape[1:]) != tuple(config.sample_shape):
        raise ValueError(f"--data {spec}: each sample of X is {tuple(X.shape[1:])}, but the model reads "
                         f"{tuple(config.sample_shape)}")
    if tuple(y.shape[1:]) != tuple(config.output_shape):
        raise ValueError(f"--data {spec}: each target is {tuple(y.shape[1:])}, but the model gives "
                         f"{tuple(config.output_shape)}")
    if len(X) != len(y):
        raise ValueError(f"--data {spec}: {len(X)} samples of X but {len(y)} targets")
    if ids and X.dtype.kind not in "iu":
        raise ValueError(f"--data {spec}: an embedding reads integer ids, but X is {X.dtype}")
    if not ids and X.dtype.kind != "f":
        raise ValueError(f"--data {spec}: X must hold floating-point values, got {X.dtype}")
    for name, array in (("X", X), ("y", y)):
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"--data {spec}: {name} holds NaN or infinite values")
    if n_samples is not None:
        if n_samples > len(X):
            raise ValueError(f"--data {spec}: {n_samples} samples asked for (--samples), but it holds {len(X)}")
        X, y = X[:n_samples], y[:n_samples]
    return (X.astype(np.int64) if ids else X.astype(config.dtype)), y.astype(config.dtype)


_CACHE: dict = {}


def _read(path):
    """A file's contents (a text, or the (X, y) of a .npz or .csv), read once per path and modification time."""
    try:
        key = (os.path.abspath(path), os.path.getmtime(path))
    except OSError as exc:
        raise ValueError(f"--data {path}: {exc.strerror}") from None
    if key not in _CACHE:
        _CACHE[key] = _parse(path)
    return _CACHE[key]


def _parse(path):
    if path.endswith(".txt"):
        with open(path, encoding="utf-8") as f:
            chars = f.read()
        if not chars:
            raise ValueError(f"--data {path}: the text is empty")
        return chars
    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in ("X", "y") if k not in data.files]
                if missing:
                    raise ValueError(f"--data {path}: no array {' or '.join(missing)} (it has "
                                     f"{', '.join(data.files) or 'none'}); save it with np.savez(path, X=..., y=...)")
                return np.asarray(data["X"]), np.asarray(data["y"])
        except (OSError, EOFError) as exc:
            raise ValueError(f"--data {path}: not a NumPy .npz file ({exc})") from None
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    try:
        float(lines[0].split(",")[0])
    except (ValueError, IndexError):
        lines = lines[1:]  # a header
    try:
        table = np.array([[float(v) for v in line.split(",")] for line in lines])
    except ValueError as exc:
        raise ValueError(f"--data {path}: not a table of numbers ({exc})") from None
    if table.ndim != 2 or len(table) == 0:
        raise ValueError(f"--data {path}: every row must have the same number of values, and there must be rows")
    return table, None


def _bundled(name):
    try:
        from sklearn import datasets  # scikit-learn: the data extra (pip install 'backprop-crosscheck[data]')
    except ModuleNotFoundError:
        raise ValueError(f"--data {name}: needs scikit-learn, which is not installed "
                         f"(pip install 'backprop-crosscheck[data]')") from None
    if name == "digits":
        bunch = datasets.load_digits()
        return bunch.data / 16.0, bunch.target
    bunch = datasets.load_iris()
    X = bunch.data
    return (X - X.mean(axis=0)) / X.std(axis=0), bunch.target


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
