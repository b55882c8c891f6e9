"""The one comparison: shape, then dtype, then finiteness, then values; messages that locate the difference.

Nothing passes on NaN or infinity (two runs that both diverge do not agree), on an
empty array, or on a shape or dtype mismatch.
"""

from dataclasses import dataclass

import numpy as np

from crosscheck.common import dtypes
from crosscheck.verdict import tolerances


class Disagreement(AssertionError):
    """A backend's result is not the reference's, with where and by how much.

    first_bad: the first index (in C order) out of tolerance, where one comparison located it; first_epoch: the
    first epoch out of tolerance, where a trajectory check located it (crosscheck.verdict.checks), for the report;
    blamed: the voters the majority vote found odd (crosscheck.verdict.checks.vote), () where no vote was held or none
    was odd; diagnosable: False where the failure left no values to diagnose (a program's bad result,
    exchange.BadResult).
    """

    first_bad: tuple | None = None
    first_epoch: int | None = None
    blamed: tuple = ()
    diagnosable: bool = True


@dataclass(frozen=True)
class Diff:
    max_abs: float
    abs_at: tuple
    max_rel: float
    rel_at: tuple
    first_bad: tuple | None  # the first index (in C order) outside tolerance, if a tolerance was given

    def describe(self, epoch=None):
        return (f"largest absolute difference {self.max_abs:.3e} at {_index(self.abs_at, epoch)}, "
                f"largest relative difference {self.max_rel:.3e} at {_index(self.rel_at, epoch)}")


def _index(at, epoch=None):
    """"[i, j]", "epoch E [j]" when epoch lists the epochs along the first axis, or "the scalar" for a 0-d value."""
    at = [int(i) for i in at]
    if not at and not isinstance(epoch, (tuple, list)):
        return "the scalar"
    if isinstance(epoch, (tuple, list)) and at:
        return f"epoch {epoch[at[0]]} [" + ", ".join(map(str, at[1:])) + "]"
    return "[" + ", ".join(map(str, at)) + "]"


def _label(what, backend, epoch):
    """epoch: one epoch, or a list of the epochs stacked along the first axis (located per difference)."""
    where = f" at epoch {epoch}" if isinstance(epoch, int) else ""
    return f"{backend}: {what}{where}"


def check_comparable(actual, expected, *, what, backend, epoch=None, dtype=None):
    """Raise Disagreement unless both are non-empty, finite, of one shape and of the expected dtype."""
    label = _label(what, backend, epoch)
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise Disagreement(f"{label}: shape {actual.shape} differs from the reference's {expected.shape}")
    want = np.dtype(dtype) if dtype is not None else expected.dtype
    if actual.dtype != want:
        raise Disagreement(f"{label}: dtype {actual.dtype} differs from the expected {want}")
    if actual.size == 0:
        raise Disagreement(f"{label}: nothing to compare (empty array)")
    for side, arr in (("backend", actual), ("reference", expected)):
        bad = ~np.isfinite(arr)
        if bad.any():
            first = np.unravel_index(np.argmax(bad), arr.shape)
            run = epoch is not None or "[epoch" in what  # a trajectory's values: a run that went non-finite
            why = "the run diverged" if run else "a NaN or an infinity where a number was due (no run is involved)"
            exc = Disagreement(f"{label}: {side} result is not finite ({arr[first]} at {_index(first, epoch)}): "
                               f"{why}, which is never agreement")
            exc.first_bad = tuple(int(i) for i in first)
            raise exc
    return actual, expected


def diff(actual, expected, tol=None):
    """Where and by how much actual differs from expected (both finite, same shape)."""
    wide = np.longdouble if np.longdouble in (np.asarray(actual).dtype, np.asarray(expected).dtype) else np.float64
    actual, expected = np.asarray(actual, dtype=wide), np.asarray(expected, dtype=wide)  # an extended twin's bits kept
    abs_err = np.abs(actual - expected)
    # Relative to |expected|; where expected is exactly 0, any difference is infinitely relative (and none is 0).
    scale = np.abs(expected)
    with np.errstate(over="ignore"):  # a large difference from a subnormal is inf, which is what it is
        rel_err = np.divide(abs_err, scale, out=np.where(abs_err > 0, np.inf, 0.0), where=scale > 0)
    abs_at = np.unravel_index(np.argmax(abs_err), abs_err.shape)
    rel_at = np.unravel_index(np.argmax(rel_err), rel_err.shape)
    first_bad = None
    if tol is not None:
        bad = abs_err > tol.atol + tol.rtol * np.abs(expected)
        if bad.any():
            first_bad = np.unravel_index(np.argmax(bad), bad.shape)
    return Diff(float(abs_err[abs_at]), abs_at, float(rel_err[rel_at]), rel_at, first_bad)


def assert_close(actual, expected, tol, *, what, backend, epoch=None, dtype=None):
    """Elementwise |actual - expected| <= tol.atol + tol.rtol |expected|, else a Disagreement that locates it."""
    __tracebackhide__ = True
    actual, expected = check_comparable(actual, expected, what=what, backend=backend, epoch=epoch, dtype=dtype)
    d = diff(actual, expected, tol)
    if d.first_bad is not None:
        exc = Disagreement(f"{_label(what, backend, epoch)} disagrees with the reference beyond "
                           f"rtol={tol.rtol:g}, atol={tol.atol:g}: first at {_index(d.first_bad, epoch)}; "
                           f"{d.describe(epoch)}")
        exc.first_bad = tuple(int(i) for i in d.first_bad)
        raise exc
    return d


def assert_low_close(actual, ref_low, ref64, *, what, backend, epoch=None, dtype=None, rule=None, theirs=None,
                     twin=None):
    """actual, in dtype (float32, bfloat16 or float16; default ref_low's), within tolerances.low_bound of ref64,
    scaled by ref_low's own deviation from ref64 (the NumPy reference in that dtype, on the same values). The dtype is
    the problem's: a reference that returns another (a mistake planted in it) is itself named for it. rule: the row of
    tolerances.LOW, where not dtype's (a mixed-precision run, float32 computed in rule). theirs: ref_low's deviation
    (low_reference_diff's), where several backends are held to one reference (tools/gpt_scale.py, 124M entries);
    ref_low may then be None, given the dtype.
    In float64 the same rule holds with twin saying what ref64 and ref_low are: "extended" (ref64 the reference in
    extended precision, ref_low the float64 reference: one op) or "nudged" (ref64 the reference's run, ref_low the
    widest of its runs under rounding, findings.shadows: a trajectory)."""
    __tracebackhide__ = True
    dtype = dtypes.numpy_dtype(dtype) if dtype is not None else np.asarray(ref_low).dtype
    name = dtypes.name_of(dtype)
    actual, ref64 = check_comparable(actual, ref64, what=what, backend=backend, epoch=epoch, dtype=dtype)
    if theirs is None:
        theirs = low_reference_diff(ref_low, ref64, what=what, epoch=epoch, dtype=dtype)
    ours = diff(actual, ref64)
    rule = rule or name
    bound = tolerances.low_bound(rule, theirs.max_abs, float(np.max(np.abs(ref64))))
    if ours.max_abs > bound:
        row = tolerances.LOW[rule]
        where = name if rule == name else f"{name}, computed in {rule},"
        floor = f"plus {row.floor_ulps:g} ulps at its scale"
        if name == "float64" and twin == "nudged":
            head = (f"disagrees with the reference's run: it strays {ours.max_abs:.3e}, more than {bound:.3e} "
                    f"({row.factor:g} x the spread {theirs.max_abs:.3e} of the reference's own run under rounding, "
                    f"{floor})")
        elif name == "float64":
            head = (f"disagrees with the reference: it strays {ours.max_abs:.3e} from it in extended precision, more "
                    f"than {bound:.3e} ({row.factor:g} x the float64 reference's own {theirs.max_abs:.3e}, {floor})")
        else:
            head = (f"in {where} strays {ours.max_abs:.3e} from the float64 reference, more than {bound:.3e} "
                    f"({row.factor:g} x the NumPy {rule} reference's own {theirs.max_abs:.3e}, plus a floor)")
        exc = Disagreement(f"{_label(what, backend, epoch)} {head}; {ours.describe(epoch)}")
        wide = np.longdouble if name == "float64" else np.float64
        out = np.abs(np.asarray(actual, wide) - np.asarray(ref64, wide)) > bound
        exc.first_bad = tuple(int(i) for i in np.unravel_index(np.argmax(out), out.shape))
        raise exc
    return ours


def low_reference_diff(ref_low, ref64, *, what, epoch=None, dtype=None):
    """The NumPy reference in a low dtype against the float64 one: the deviation assert_low_close scales its bound by
    (checked comparable first: a reference planted with a mistake is named)."""
    dtype = dtypes.numpy_dtype(dtype) if dtype is not None else np.asarray(ref_low).dtype
    ref_low, ref64 = check_comparable(ref_low, ref64, what=what, backend=f"numpy {dtypes.name_of(dtype)} reference",
                                      epoch=epoch, dtype=dtype)
    return diff(ref_low, ref64)
