"""A model's layers: the Layer each entry becomes, the seeds' shorthand expanded into layers, residual blocks closed,
and the per-sample shape reaching each layer, validated as the model is built (common/config.py builds it)."""

from __future__ import annotations

from dataclasses import dataclass

from . import registry


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Layer:
    """One layer of a model: its kind (registry.LAYERS), its shape, and where its parameters sit in params.

    shape: (fan_in, fan_out) for dense; () for a layer whose shape is its input's.
    slot: the index of its (W, b)-style tuple in params; None for a layer without parameters.
    """

    kind: str
    shape: tuple = ()
    slot: int | None = None
    input_grad: bool = True  # False for the first layer: its input is the data, whose gradient nobody needs
    mask: int | None = None  # for a noisy kind (dropout): the index of its mask among a step's masks
    closes: int = 0  # how many residual blocks end with this layer: after it, the walk adds each block's input back
    tied: bool = False  # its parameters are another layer's (slot names whose): a tied output layer's, the embedding's
    conventions: tuple = ()  # the declared conventions of its kind, (key, value) pairs (common/conventions.py)


def expand(layers, hidden, output):
    """The seeds' shorthand (widths, a hidden and an output activation) as a sequence of layers:
    (2, 4, 1), sigmoid, sigmoid -> dense 2x4, sigmoid, dense 4x1, sigmoid."""
    model = []
    for l, (fan_in, fan_out) in enumerate(zip(layers, layers[1:])):
        model += [("dense", fan_in, fan_out), output if l == len(layers) - 2 else hidden]
    return placed(model)


def placed(model):
    """Layer objects, each given its slot in params and told whether its input gradient is wanted.

    An entry may be a Layer, a kind ("tanh") or a kind with its shape (("dense", 4, 6))."""
    entries = []
    for i, entry in enumerate(model):
        if isinstance(entry, Layer):
            kind, shape = entry.kind, entry.shape
        elif isinstance(entry, str):
            kind, shape = entry, ()
        elif isinstance(entry, tuple) and entry and isinstance(entry[0], str):
            kind, shape = entry[0], tuple(entry[1:])
        else:
            raise ValueError(f"model[{i}] must be a Layer, a layer kind or (kind, *shape), got {entry!r}")
        if kind not in registry.LAYERS:
            raise ValueError(f"model[{i}]: unknown layer kind {kind!r}; choose one of {tuple(registry.LAYERS)}")
        entries.append((kind, shape))
    closes = _blocks(entries)
    placed: list[Layer] = []
    slot = mask = 0
    for i, (kind, shape) in enumerate(entries):
        has_params, noisy = bool(registry.LAYERS[kind].params), registry.LAYERS[kind].noise
        if registry.LAYERS[kind].ties:  # it reads (and adds its gradient to) the embedding's matrix
            if i == 0 or placed[0].kind != "embedding" or tuple(placed[0].shape) != tuple(shape):
                raise ValueError(f"model[{i}]: an {kind} layer {shape} shares the embedding's matrix: the model must "
                                 f"begin with an embedding of the same (vocabulary, dim), got "
                                 f"{placed[0].kind if placed else None} {placed[0].shape if placed else ()}")
            placed.append(Layer(kind, shape, placed[0].slot, mask=None, closes=closes[i], tied=True))
            continue
        placed.append(Layer(kind, shape, slot if has_params else None, input_grad=i > 0, mask=mask if noisy else None,
                            closes=closes[i]))
        slot += has_params
        mask += noisy
    return tuple(placed)


def _blocks(entries):
    """[how many residual blocks end at each layer], the blocks checked: a residual layer's shape (N,) makes the N
    layers after it its block, which must end before the output activation and inside any block around it."""
    closes = [0] * len(entries)
    open_ends: list[int] = []  # the blocks around the layer, innermost last
    for i, (kind, shape) in enumerate(entries):
        while open_ends and open_ends[-1] < i:
            open_ends.pop()
        if registry.LAYERS[kind].width != "block":
            continue
        if len(shape) != 1 or not is_int(shape[0]) or shape[0] < 1:
            raise ValueError(f"model[{i}]: a residual layer needs the number of layers its block holds (the ones "
                             f"after it: y = x + f(x)), a positive integer, got {shape}")
        end = i + shape[0]
        if end >= len(entries) - 1:
            raise ValueError(f"model[{i}]: a residual block of {shape[0]} layers runs past the layers before the "
                             f"output activation (it would end at model[{end}] of {len(entries)})")
        if open_ends and end > open_ends[-1]:
            raise ValueError(f"model[{i}]: a residual block of {shape[0]} layers ends at model[{end}], past the end of "
                             f"the block around it (model[{open_ends[-1]}]): blocks nest")
        open_ends.append(end)
        closes[end] += 1
    return closes


def implied_by(model, input_shape=None):
    """(widths, hidden, output, shapes) of an explicit model, validated: what the shorthand would say of it, and the
    per-sample shape reaching each layer (shapes[i] is model[i]'s input, shapes[-1] the output's)."""
    if not model:
        raise ValueError("model must list at least one layer")
    if input_shape is not None and (not isinstance(input_shape, tuple) or not input_shape
                                    or not all(is_int(n) and n > 0 for n in input_shape)):
        raise ValueError(f"input_shape must be a per-sample shape of positive integers, e.g. (1, 8, 8), "
                         f"got {input_shape!r}")
    widths: list[int] = []
    shape: tuple = input_shape or ()  # () until a first layer that changes the width (dense) sets it
    shapes = []
    skips: list = []  # the open residual blocks' inputs, innermost last
    for i, layer in enumerate(model):
        kind = registry.LAYERS[layer.kind]
        if kind.width == "changes":
            if len(layer.shape) != 2 or not all(is_int(n) and n > 0 for n in layer.shape):
                raise ValueError(f"model[{i}]: a {layer.kind} layer needs (fan_in, fan_out) positive widths, "
                                 f"got {layer.shape}")
            shape = shape or layer.shape[:1]  # the first layer: the input's width is its fan_in
        elif not shape:
            raise ValueError(f"model must begin with a dense layer (it sets the input width), or give input_shape "
                             f"(a {layer.kind} layer's input shape is not implied by it)")
        shapes.append(shape)
        if kind.width == "changes":
            widths += layer.shape[1:] if widths else layer.shape
        shape = output_shape(i, layer, kind, shape, last=i == len(model) - 1)
        if kind.width == "block":
            skips.append(shape)
        for _ in range(layer.closes):
            start = skips.pop()
            if shape != start:
                raise ValueError(f"model[{i}] ends a residual block with per-sample shape {shape}, which cannot be "
                                 f"added to the block's input, {start}")
    shapes.append(shape)
    if any(registry.LAYERS[layer.kind].ties for layer in model) and (not widths or widths[-1] != shape[-1]):
        widths = (widths or [shapes[1][-1]]) + [shape[-1]]  # a tied output layer sets it: dim to the vocabulary
    if not widths:
        raise ValueError("model must hold a dense layer (it sets the output width)")
    if len(shape) > 2:
        raise ValueError(f"model must end with one score per class, or one per class at each step of a sequence "
                         f"(flatten before the dense layer), but its output has per-sample shape {shape}")
    if model[-1].kind not in registry.ACTIVATIONS:
        raise ValueError(f"model must end with an activation layer (the loss reads its z and a), got {model[-1].kind}")
    inner = dict.fromkeys(layer.kind for layer in model[:-1] if layer.kind in registry.ACTIVATIONS)
    return tuple(widths), ",".join(inner) or "identity", model[-1].kind, tuple(shapes)


def output_shape(i, layer, kind, shape, last):
    """The per-sample shape model[i] (layer, of registered kind) gives for its input's, checked as its width says."""
    if kind.width == "changes":  # on (fan_in,), or on every step of a sequence (T, fan_in)
        if shape[-1:] != layer.shape[:1] or len(shape) > 2:
            raise ValueError(f"model[{i}]: {layer.kind} layer takes {layer.shape[0]} inputs, but "
                             f"{shape[0] if len(shape) == 1 else shape} reach it")
        return shape[:-1] + layer.shape[1:]
    if kind.width == "features":
        if len(layer.shape) != 1 or not (is_int(layer.shape[0]) and layer.shape[0] > 0):
            raise ValueError(f"model[{i}]: a {layer.kind} layer needs its number of features, got {layer.shape}")
        if shape != layer.shape and not (kind.per_position and len(shape) == 2 and shape[-1:] == layer.shape):
            raise ValueError(f"model[{i}]: {layer.kind} layer has {layer.shape[0]} features, but "
                             f"{shape[0] if len(shape) == 1 else shape} reach it")
    elif kind.width == "rate":
        if len(layer.shape) != 1 or not (isinstance(layer.shape[0], (int, float)) and 0 <= layer.shape[0] < 1):
            raise ValueError(f"model[{i}]: a {layer.kind} layer needs its rate, a probability in [0, 1), "
                             f"got {layer.shape}")
    elif kind.width == "block":
        return shape  # its shape, the block's length, was checked with the blocks (_blocks)
    elif kind.ids and i > 0:
        raise ValueError(f"model[{i}]: an {layer.kind} layer reads integer ids: it can only be the first layer")
    elif kind.width == "reshapes" and kind.reshape is not None:
        try:
            return kind.reshape(layer.shape, shape)
        except ValueError as e:
            raise ValueError(f"model[{i}]: {e}") from None
    elif layer.shape:
        raise ValueError(f"model[{i}]: a {layer.kind} layer keeps its input's shape; give it none, got {layer.shape}")
    elif layer.kind in registry.ACTIVATIONS and not registry.ACTIVATIONS[layer.kind].hidden and not last:
        raise ValueError(f"model[{i}]: {layer.kind} may only be the output layer")
    return shape
