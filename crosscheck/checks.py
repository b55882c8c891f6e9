"""The cross-checks themselves, shared by the tests and the report: each raises Disagreement or returns diffs.

float64 problems are compared with the fixed tolerances; float32 problems are
compared with the float64 reference run on exactly the same (upcast) values,
bounded by the NumPy float32 reference's own deviation (see tolerances.py).
"""

import importlib
from functools import lru_cache

import numpy as np

import reference
from reference import gradcheck

from . import tolerances
from .cases import upcast
from .compare import Disagreement, assert_close, assert_float32_close

KINDS = ("weight", "bias")


def param_names(n_layers, suffix=""):
    """['layer 1 weight<suffix>', 'layer 1 bias<suffix>', ...] in params' order."""
    return [f"layer {l} {kind}{suffix}" for l in range(1, n_layers + 1) for kind in KINDS]


def flat(params):
    return [t for layer in params for t in layer]


class Findings:
    """Compares every quantity, then raises one Disagreement listing all that failed (or returns the diffs)."""

    def __init__(self):
        self.diffs, self.failures = [], []

    def compare(self, actual, ref, ref64, kind, *, what, backend, epoch=None):
        """ref is the reference in the problem's dtype; ref64 its float64 twin (None for float64 problems)."""
        try:
            if ref64 is None:
                diff = assert_close(actual, ref, tolerances.float64(kind), what=what, backend=backend, epoch=epoch)
            else:
                diff = assert_float32_close(actual, ref, ref64, what=what, backend=backend, epoch=epoch)
            self.diffs.append((what, epoch, diff))
        except Disagreement as exc:
            self.failures.append(str(exc))

    def result(self):
        __tracebackhide__ = True
        if self.failures:
            total = len(self.failures) + len(self.diffs)
            raise Disagreement(f"{len(self.failures)} of {total} quantities disagree:\n  " + "\n  ".join(self.failures))
        return self.diffs


def _problem(case, dtype, epochs, as_float64):
    problem = case.inputs(dtype, epochs)
    if as_float64:
        problem = (*upcast(*problem[:4]), problem[4])
    return problem


@lru_cache(maxsize=64)
def reference_point(case, dtype, as_float64=False):
    """The reference's output and (loss, gradients) at a case's initial parameters, once per process.

    as_float64: the float64 reference on exactly the values of the dtype problem (for float32 bounds).
    """
    config, params, X, y, _ = _problem(case, dtype, None, as_float64)
    return reference.DRIVER.run_forward(params, X, config), reference.DRIVER.run_gradients(params, X, y, config)


@lru_cache(maxsize=64)
def reference_run(case, dtype, epochs=None, as_float64=False):
    """The reference's training run for a case, once per process."""
    config, params, X, y, orders = _problem(case, dtype, epochs, as_float64)
    return reference.DRIVER.run_train(params, X, y, config, orders, case.checkpoints(config.epochs))


def _twin(fn, case, dtype, *args):
    """fn's float64 twin of a float32 problem, or None for a float64 one."""
    return None if dtype == "float64" else fn(case, dtype, *args, as_float64=True)


def check_forward(driver, case, dtype, device="cpu"):
    config, params, X, _, _ = case.inputs(dtype)
    ref, ref64 = reference_point(case, dtype), _twin(reference_point, case, dtype)
    found = Findings()
    found.compare(driver.run_forward(params, X, config, device), ref[0], ref64 and ref64[0], "forward",
                  what="network output", backend=driver.name)
    return found.result()


def check_gradients(driver, case, dtype, device="cpu", autodiff=False):
    """The backend's manual gradients (or, with autodiff, its framework's autodiff) against the reference's."""
    config, params, X, y, _ = case.inputs(dtype)
    run = driver.run_autodiff_gradients if autodiff else driver.run_gradients
    label = driver.name + (" autodiff" if autodiff else "")
    loss, grads = run(params, X, y, config, device)
    ref_loss, ref_grads = reference_point(case, dtype)[1]
    ref64 = _twin(reference_point, case, dtype)
    ref64_loss, ref64_grads = ref64[1] if ref64 else (None, None)
    found = Findings()
    found.compare(loss, ref_loss, ref64_loss, "forward", what="loss", backend=label)
    names = param_names(len(grads), " gradient")
    for i, (name, g) in enumerate(zip(names, flat(grads))):
        found.compare(g, flat(ref_grads)[i], ref64_grads and flat(ref64_grads)[i], "gradient", what=name,
                      backend=label)
    return found.result()


def check_finite_differences(case):
    """The reference's float64 gradients against central differences of its own loss."""
    config, params, X, y, _ = case.inputs("float64")
    _, grads = reference_point(case, "float64")[1]
    numeric = gradcheck.numerical_gradients(params, X, y, config)
    found = Findings()
    for name, g, n in zip(param_names(len(grads), " gradient"), flat(grads), flat(numeric)):
        found.compare(g, n, None, "finite_difference", what=name, backend="numpy vs central differences")
    return found.result()


def _stacked(run, i, checkpoints):
    """The i-th parameter array of run at each checkpoint, stacked along a new first axis."""
    return None if run is None else np.stack([flat(run.checkpoints[e])[i] for e in checkpoints])


def check_trajectory(driver, case, dtype, device="cpu", epochs=None, run=None, ref=None, ref64=None):
    """Loss at every step and parameters at the case's checkpoints, against the reference's run.

    run, ref and ref64 may be passed in when the caller has already trained them (the report does).
    """
    config, params, X, y, orders = case.inputs(dtype, epochs)
    checkpoints = case.checkpoints(config.epochs)
    if run is None:
        run = driver.run_train(params, X, y, config, orders, checkpoints, device)
    if ref is None:
        ref, ref64 = reference_run(case, dtype, epochs), _twin(reference_run, case, dtype, epochs)
    found = Findings()
    found.compare(run.losses, ref.losses, ref64 and ref64.losses, "trajectory", what="loss [epoch, step]",
                  backend=driver.name)
    if sorted(run.checkpoints) != sorted(ref.checkpoints):
        raise AssertionError(f"{driver.name}: checkpoints at epochs {sorted(run.checkpoints)}, "
                             f"expected {sorted(ref.checkpoints)}")
    # Each parameter is compared stacked over the checkpoints: for float32 the bound is then set by the
    # NumPy float32 reference's largest deviation over the run, not at one checkpoint (round-off grows
    # and shrinks along a trajectory, most where the loss leaves a plateau).
    for i, name in enumerate(param_names(len(params))):
        ours, theirs, theirs64 = (_stacked(r, i, checkpoints) for r in (run, ref, ref64))
        found.compare(ours, theirs, theirs64, "trajectory", what=name, backend=driver.name, epoch=list(checkpoints))
    return found.result()


# Losses kept unfused beside their fused training form: name -> the output activation they fuse with.
UNFUSED_PIECES = {"bce": "sigmoid"}


def check_loss_pieces(driver, device="cpu", seed=0):
    """A built-in backend's unfused loss pieces, in float64, on its own functions.

    dL/da from <name>_backward against central differences of <name>_forward, and the chain
    f'(z) * dL/da against the fused backward that training uses (dL/dz), at random interior points.
    """
    import backends  # not at the top: the checks import with NumPy alone (tests/test_mirrors.py)

    package = backends.REGISTRY[driver.name][0]
    losses = importlib.import_module(f"{package}.losses")
    activations = importlib.import_module(f"{package}.activations")
    rng = np.random.default_rng(seed)
    found = Findings()
    for name, output in UNFUSED_PIECES.items():
        z = rng.uniform(-3, 3, size=(5, 3))
        a = reference.activations.activation_forward(output, z)
        y = rng.uniform(0, 1, size=z.shape)
        forward, backward = getattr(losses, f"{name}_forward"), getattr(losses, f"{name}_backward")
        native = [driver.to_native(arr, device) for arr in (z, a, y)]
        da = driver.to_numpy(backward(native[1], native[2]))

        def loss_of(a_, forward=forward, y_=native[2]):
            return float(driver.to_numpy(forward(driver.to_native(a_, device), y_)))

        numeric = _central_differences(loss_of, a)
        found.compare(da, numeric, None, "finite_difference", what=f"{name}_backward (dL/da)",
                      backend=f"{driver.name} vs central differences")
        chained = driver.to_numpy(activations.activation_backward(output, driver.to_native(da, device), *native[:2]))
        fused = driver.to_numpy(losses.loss_backward(name, native[1], native[2]))
        found.compare(chained, fused, None, "gradient", what=f"{output}'(z) * {name}_backward against the fused dL/dz",
                      backend=driver.name)
    return found.result()


def _central_differences(f, x, eps=1e-6):
    """df/dx entry by entry: (f(x + eps) - f(x - eps)) / (2 eps)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        bumped = [x.copy(), x.copy()]
        bumped[0][i] += eps
        bumped[1][i] -= eps
        g[i] = (f(bumped[0]) - f(bumped[1])) / (2 * eps)
    return g
