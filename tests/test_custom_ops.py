"""A custom backward pass for one op, checked by the op checks (`crosscheck op`, crosscheck.check_op): the worked
examples agree in every dtype they declare, each planted copy exits 1 naming the op, the quantity and the mistake, and
an object that is no op is refused with exit 2 before anything runs."""

import re

import pytest

import crosscheck
from crosscheck.common.errors import AdapterError
from crosscheck.report.op import _load, as_op, op_main

from .source import ROOT, load_example_module, needs_source_tree
from .strictness import load_or_skip

# (example module, its framework, the quantity its planted copy gets wrong, the catalogue mistake it is diagnosed as)
EXAMPLES = [
    ("rmsnorm_torch_op", "torch", "rmsnorm layer backward: input gradient", "rmsnorm-backward-without-mean-term"),
    ("softmax_xent_jax_op", "jax", "softmax_cross_entropy backward", "cross-entropy-not-averaged"),
    ("attention_numpy_op", "numpy", "attention layer backward: input gradient",
     "attention-softmax-backward-without-row-sum"),
]


@needs_source_tree
@pytest.mark.parametrize(("module", "framework", "quantity", "mistake"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_a_worked_op_agrees_and_its_planted_copy_is_named(request, capsys, module, framework, quantity, mistake):
    load_or_skip(request.config, framework)
    load_example_module(module)  # examples/ on sys.path, as a user's folder is
    assert op_main([f"mine=examples.{module}:OP"]) == 0
    out = capsys.readouterr().out
    declared = load_example_module(module).OP.dtypes
    assert out.count(" agrees: ") == len(declared) and "AGREE: mine matches the NumPy reference's" in out, out
    assert op_main([f"mine=examples.{module}_buggy:OP"]) == 1
    out = capsys.readouterr().out
    assert f"{quantity} disagrees" in out and f"[{mistake}]" in out and "DISAGREE: mine" in out, out
    assert "agree with each other; the odd one out: mine" in out, out  # the op-level vote, the op a voter


@needs_source_tree
def test_check_op_returns_a_report_that_asserts(request):
    load_or_skip(request.config, "numpy")
    report = crosscheck.check_op(load_example_module("attention_numpy_op").OP)
    assert report.agrees and report.status == 0 and "<pre>" in report._repr_html_()
    planted = crosscheck.check_op(load_example_module("attention_numpy_op_buggy").OP, dtypes=("float64",))
    assert not planted.agrees and "[attention-softmax-backward-without-row-sum]" in planted.diagnosis
    with pytest.raises(AssertionError, match="DISAGREE: attention-buggy"):
        planted.assert_agrees()


@needs_source_tree
@pytest.mark.parametrize(("obj", "kind", "framework"), [
    ("rmsnorm_torch_op:RMSNormFunction", "rmsnorm", "torch"),  # a torch.autograd.Function subclass as written
    ("softmax_xent_jax_op:softmax_xent", "softmax_cross_entropy", "jax"),  # a function under jax.custom_vjp
])
def test_an_op_as_written_is_wrapped_by_its_type(request, capsys, obj, kind, framework):
    load_or_skip(request.config, framework)
    load_example_module(obj.partition(":")[0])
    assert op_main([f"mine=examples.{obj}", "--kind", kind, "--dtypes", "float64"]) == 0, capsys.readouterr().out


@needs_source_tree
@pytest.mark.parametrize(("argv", "says"), [
    (["mine=examples.attention_numpy_op:attention_forward"], "is no Op: say which registered op it computes"),
    (["mine=examples.attention_numpy_op:OP", "--kind", "rmsnorm"], "computes 'attention', not the --kind 'rmsnorm'"),
    (["mine=examples.no_such_module:OP"], "no module named 'examples.no_such_module'"),
    (["mine=examples.attention_numpy_op:NOPE"], "has no 'NOPE'"),
    (["mine=examples.attention_numpy_op:HEADS", "--kind", "attention"], "is a int: an op is"),
    (["mine=examples.attention_numpy_op:OP", "--dtypes", "float8"], "--dtypes: unknown ['float8']"),
    (["mine=examples.attention_numpy_op:heads", "--kind", "dropout"], "a layer with a mask, ids or running"),
    (["examples.attention_numpy_op:OP"], "an op is given as NAME=module:object"),
])
def test_what_is_no_op_is_refused_with_exit_2(capsys, argv, says):
    load_example_module("attention_numpy_op")
    with pytest.raises(SystemExit) as exited:
        op_main(argv)
    assert exited.value.code == 2
    assert says in capsys.readouterr().err


@needs_source_tree
@pytest.mark.slow  # a whole pytest session in a subprocess (13 s here); tox -e installed runs --op from a user's folder
def test_pytest_op_checks_your_ops_alone_from_your_folder(tmp_path):
    """pytest --pyargs crosscheck_tests --op ...: the op's checks alone, a test per dtype it declares; the planted
    copy fails with its diagnosis, the correct one passes, and nothing else of the suite runs."""
    import shutil

    from .test_plugins import pytest_in

    for name in ("attention_numpy_op.py", "attention_numpy_op_buggy.py"):
        shutil.copy(ROOT / "examples" / name, tmp_path / name)
    done = pytest_in(tmp_path, "--pyargs", "crosscheck_tests", "--op", "mine=attention_numpy_op:OP", "--op",
                     "slip=attention_numpy_op_buggy:attention_forward", "-n", "0")
    # a spec that is no op stops the session at collection (exit 2), saying why
    assert done.returncode == 2 and "is no Op: say which registered op it computes" in done.stdout, done.stdout
    done = pytest_in(tmp_path, "--pyargs", "crosscheck_tests", "--op", "mine=attention_numpy_op:OP", "--op",
                     "slip=attention_numpy_op_buggy:OP", "-n", "0")
    out = done.stdout
    # (installed, a module that checks the checkout's files skips whole: "1 skipped")
    assert done.returncode == 1 and re.search(r"\n2 failed, 2 passed(, \d+ skipped)?(, \d+ deselected)? in ", out), \
        out[-3000:]
    assert "FAILED test_custom_ops.py::test_your_op_agrees_with_the_reference[slip-float64]" in out
    assert "[attention-softmax-backward-without-row-sum]" in out


def user_ops(config):
    """[(the Op, a dtype it declares)] of the session's --op NAME=module:object[@KIND]; a spec that cannot be read as
    an op is a usage error, said before any test runs."""
    found = []
    for spec in config.getoption("--op"):
        target, _, kind = spec.partition("@")
        try:
            name, obj = _load(target)
            op = as_op(obj, kind or None, name)
        except AdapterError as exc:
            raise pytest.UsageError(f"--op {spec}: {exc}") from None
        found += [(op, dtype) for dtype in op.dtypes]
    return found


def pytest_generate_tests(metafunc):
    if "user_op" in metafunc.fixturenames:
        found = user_ops(metafunc.config)
        metafunc.parametrize(("user_op", "op_dtype"), found or [pytest.param(None, None, marks=pytest.mark.skip(
            reason="no op of yours to check: pass --op NAME=module:object"))],
            ids=[f"{op.name}-{dtype}" for op, dtype in found] or ["none"])


def test_your_op_agrees_with_the_reference(user_op, op_dtype):
    """pytest --op: your op, by every op check in each dtype it declares; where it disagrees, its diagnosis."""
    report = crosscheck.check_op(user_op, dtypes=(op_dtype,))
    if not report.agrees:
        pytest.fail(report.text, pytrace=False)

