"""A custom backward pass for one op, checked by the op checks (`crosscheck op`, crosscheck.check_op): the worked
examples agree in every dtype they declare, each planted copy exits 1 naming the op, the quantity and the mistake, and
an object that is no op is refused with exit 2 before anything runs."""

import pytest

import crosscheck
from crosscheck.report.op import op_main

from .source import load_example_module, needs_source_tree
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
