"""The bookkeeping every backend shares, framework-free: dispatch tables built from the registry, and the optimizers'
walk over the parameter leaves. The maths stays in each backend's files, mirrored line by line; what is the same in
all of them lives here once.

Optimizer state is by name throughout: a run's state is {state name: [(state of each leaf) per layer]}, and each
leaf's update reads and returns {state name: array}, the names of common/registry.py's Optimizer.state.
"""

from crosscheck.common import registry

# The layer kinds with forward and backward functions of their own (each activation is served by the activation
# layer's pair), and the kinds with buffers, which add their evaluation, running update and starting value.
KINDS = tuple(name for name in registry.LAYERS if name not in registry.ACTIVATIONS)
BUFFERED = tuple(name for name, kind in registry.LAYERS.items() if kind.buffers)


def table(namespace, names, suffix, *, aliases=None):
    """{name: namespace[f"{name}_{suffix}"]} for each registered name: every dispatch table built one way.

    aliases maps a registered name to the stem its functions are spelt with (bce's are sigmoid_bce_*); a missing
    function is an error that names it, at import."""
    aliases = aliases or {}
    found = {}
    for name in names:
        fn = namespace.get(f"{aliases.get(name, name)}_{suffix}")
        if fn is None:
            raise NotImplementedError(f"{namespace['__name__']} has no {aliases.get(name, name)}_{suffix} for the "
                                      f"registered {name!r}")
        found[name] = fn
    return found


def optimizer_init(params, config, init_leaf):
    """The optimizer's state at step 0, {state name: [(state of each leaf) per layer]}, from init_leaf(p), which
    gives one leaf's {state name: array}."""
    names = registry.OPTIMIZERS[config.optimizer].state
    expected = set(names)
    leaves = [[_named(init_leaf(p), expected, config.optimizer, "init") for p in layer] for layer in params]
    return {name: [tuple(leaf[name] for leaf in layer) for layer in leaves] for name in names}


def optimizer_update(params, grads, state, k, config, step_leaf):
    """(params, state) after one update, leaf by leaf: step_leaf(p, g, s, k, config, l, which) on each leaf (layer
    l's leaf number which), its state s by name. The maths, weight decay included, is the backend's own."""
    names = registry.OPTIMIZERS[config.optimizer].state
    expected = set(names)  # once per update: the check below runs on every leaf of every step
    new_params: list = []
    new_state: dict = {name: [] for name in names}
    for l, (layer, layer_grads) in enumerate(zip(params, grads)):
        new_layer, new_leaf_states = [], []
        for which, (p, g) in enumerate(zip(layer, layer_grads)):
            p, s = step_leaf(p, g, {name: state[name][l][which] for name in names}, k, config, l, which)
            new_layer.append(p)
            new_leaf_states.append(_named(s, expected, config.optimizer, "update"))
        new_params.append(tuple(new_layer))
        for name in names:
            new_state[name].append(tuple(s[name] for s in new_leaf_states))
    return new_params, new_state


def _named(leaf_state, names, optimizer, what):
    """A leaf's state as the registry names it (names: a set); anything else is a mistake in the optimizer's pair,
    said so."""
    if not isinstance(leaf_state, dict) or leaf_state.keys() != names:
        got = sorted(leaf_state) if isinstance(leaf_state, dict) else type(leaf_state).__name__
        raise TypeError(f"{optimizer}_{what} must give a leaf's state by name, {sorted(names)}; got {got}")
    return leaf_state


class AtRate:
    """A configuration as one update of a scheduled run sees it: everything config's, but lr this update's (the
    schedule's, computed by each backend's optimizers.scheduled_lr)."""

    def __init__(self, config, lr):
        self._config, self.lr = config, lr

    def __getattr__(self, name):
        return getattr(self._config, name)
