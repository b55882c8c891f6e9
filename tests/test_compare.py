"""The comparison itself can fail: NaN, infinity, empty arrays, shapes and dtypes never pass."""

import numpy as np
import pytest

from crosscheck.verdict import tolerances
from crosscheck.verdict.compare import Disagreement, assert_close, assert_low_close, low_reference_diff

TOL = tolerances.float64("gradient")


def close(actual, expected, **kw):
    return assert_close(actual, expected, TOL, what="layer 2 weight gradient", backend="torch", **kw)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_never_agrees_even_with_itself(bad):
    both = np.array([1.0, bad, 3.0])
    with pytest.raises(Disagreement, match=r"torch: layer 2 weight gradient: backend result is not finite .* at \[1\]"):
        close(both, both.copy())


def test_non_finite_reference_never_agrees():
    with pytest.raises(Disagreement, match="reference result is not finite"):
        close(np.ones(3), np.array([1.0, np.nan, 1.0]))


def test_empty_never_agrees():
    with pytest.raises(Disagreement, match="nothing to compare"):
        close(np.ones((0, 3)), np.ones((0, 3)))


def test_shape_is_compared_before_values():
    with pytest.raises(Disagreement, match=r"shape \(3, 2\) differs from the reference's \(2, 3\)"):
        close(np.ones((3, 2)), np.ones((2, 3)))
    with pytest.raises(Disagreement, match="shape"):
        close(np.ones((1, 3)), np.ones(3))  # broadcasting would hide this


def test_dtype_is_compared_before_values():
    with pytest.raises(Disagreement, match="dtype float32 differs from the expected float64"):
        close(np.ones(3, dtype=np.float32), np.ones(3))


def test_message_locates_the_difference():
    expected = np.arange(6.0).reshape(2, 3) + 1
    actual = expected.copy()
    actual[1, 2] += 1e-3
    with pytest.raises(Disagreement) as info:
        close(actual, expected, epoch=250)
    text = str(info.value)
    assert "torch: layer 2 weight gradient at epoch 250" in text
    assert "first at [1, 2]" in text
    assert "largest absolute difference 1.000e-03 at [1, 2]" in text
    assert "largest relative difference 1.667e-04 at [1, 2]" in text


def test_within_tolerance_passes_and_reports():
    d = close(np.array([1.0 + 1e-15, 2.0]), np.array([1.0, 2.0]))
    assert 0 < d.max_abs < 1e-14 and d.first_bad is None


def test_float32_bound_scales_with_the_numpy_float32_deviation():
    ref64 = np.linspace(0.1, 1.0, 10)
    ref32 = (ref64 + 1e-6).astype(np.float32)
    ok = (ref64 + 3e-6).astype(np.float32)
    bad = (ref64 + 1e-4).astype(np.float32)
    assert_low_close(ok, ref32, ref64, what="loss", backend="jax")
    with pytest.raises(Disagreement, match="jax: loss in float32 strays"):
        assert_low_close(bad, ref32, ref64, what="loss", backend="jax")
    with pytest.raises(Disagreement, match="dtype float64 differs from the expected float32"):
        assert_low_close(ref64, ref32, ref64, what="loss", backend="jax")


def test_a_reference_deviation_computed_once_holds_each_backend_to_the_same_bound():
    """theirs= (tools/gpt_scale.py: one float32 reference, several backends, 124M entries): the same verdicts as the
    deviation computed inside, and a planted float32 reference is still named where the deviation is computed."""
    ref64 = np.linspace(0.1, 1.0, 10)
    ref32 = (ref64 + 1e-6).astype(np.float32)
    theirs = low_reference_diff(ref32, ref64, what="loss", dtype="float32")
    assert assert_low_close((ref64 + 3e-6).astype(np.float32), None, ref64, what="loss", backend="torch",
                            dtype="float32", theirs=theirs).max_abs < 4e-6
    with pytest.raises(Disagreement, match="torch: loss in float32 strays"):
        assert_low_close((ref64 + 1e-4).astype(np.float32), None, ref64, what="loss", backend="torch",
                         dtype="float32", theirs=theirs)
    with pytest.raises(Disagreement, match="numpy float32 reference: loss: dtype float64 differs"):
        low_reference_diff(ref64, ref64, what="loss", dtype="float32")


@pytest.mark.parametrize("expected", [0.0, 1e-310], ids=["exact zero", "subnormal"])
def test_a_large_difference_from_zero_is_reported_not_an_overflow(expected):
    """abs_err / max(|expected|, tiny) used to overflow (a RuntimeWarning, an error here) instead of reporting."""
    with pytest.raises(Disagreement) as info:
        assert_close(np.array([1.0, 10.0]), np.array([1.0, expected]), tolerances.float64("forward"),
                     what="output", backend="b")
    assert "largest relative difference inf at [1]" in str(info.value)


def test_a_scalar_is_located_as_the_scalar():
    with pytest.raises(Disagreement) as info:
        assert_close(np.float64(2.0), np.float64(1.0), tolerances.float64("forward"), what="loss", backend="b")
    text = str(info.value)
    assert "first at the scalar" in text and "[]" not in text


def test_a_non_finite_value_outside_a_run_is_not_called_a_divergence():
    """An op's NaN (autodiff's at a zero-variance sample) is no diverged run; a trajectory's NaN is."""
    from crosscheck.verdict.compare import check_comparable

    with pytest.raises(Disagreement, match=r"jax: layer 1 gradient: backend result is not finite \(nan at \[1\]\): "
                                           r"a NaN or an infinity where a number was due \(no run is involved\)"):
        check_comparable(np.array([1.0, np.nan]), np.ones(2), what="layer 1 gradient", backend="jax")
    with pytest.raises(Disagreement, match="the run diverged, which is never agreement"):
        check_comparable(np.array([[1.0, np.nan]]), np.ones((1, 2)), what="loss [epoch, step]", backend="jax")
