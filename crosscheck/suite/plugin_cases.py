"""The cases a plug-in's own functions and update rules are exercised on (tests/test_your_code.py): the models that
CS231n-style layer functions can assemble under each of their update rules, and the textbooks', d2l's, Nielsen's and
makemore's, beside crosscheck/suite/cases.py's CASES, most of which use layer kinds such code lacks."""

from dataclasses import replace

from crosscheck.reference import Config
from crosscheck.suite.cases import CASES, Case


def _plugin_cases():
    """What a plug-in's functions and rules are exercised on (tests/test_your_code.py; the cases above mostly use kinds
    they lack): CS231n-style layers under each of their update rules, the textbooks', d2l's and makemore's models."""
    def bn(optimizer, loss="softmax_cross_entropy", **hyper):
        # affine - batchnorm - relu, as the assignment stacks them: the affine bias's exact gradient is 0, its computed
        # one rounding noise that Adam scales to steps of lr; the bounds follow that spread (findings.shadows).
        output = "softmax" if loss == "softmax_cross_entropy" else "identity"
        config = Config(model=(("dense", 4, 8), ("batchnorm", 8), "relu", ("dense", 8, 3), output), loss=loss,
                        optimizer=optimizer, lr=hyper.pop("lr", 0.05), epochs=30, batch_size=6, **hyper)
        return Case(f"cs231n-bn-{optimizer}-{loss}", config, samples=30)

    def dropout(optimizer):
        # dense, relu, dropout, dense in batches of 6, the last of 2: each step's masks the reference's.
        config = Config(model=(("dense", 4, 8), "relu", ("dropout", 0.25), ("dense", 8, 3), "softmax"),
                        loss="softmax_cross_entropy", optimizer=optimizer, lr=0.05, epochs=30, batch_size=6)
        return Case(f"cs231n-dropout-{optimizer}", config, samples=32)

    def mlp(optimizer, lr=0.05, loss="softmax_cross_entropy"):
        # affine - relu - affine and a loss: what the smallest module of layer functions assembles, so that every
        # update rule and loss it provides is exercised whatever layers it lacks
        output = "softmax" if loss == "softmax_cross_entropy" else "identity"
        config = Config(model=(("dense", 4, 8), "relu", ("dense", 8, 3), output), loss=loss, optimizer=optimizer,
                        lr=lr, epochs=20, batch_size=6)
        return Case(f"cs231n-mlp-{optimizer}" + ("" if loss == "softmax_cross_entropy" else f"-{loss}"), config,
                    samples=30)

    yield from (mlp("sgd"), mlp("momentum"), mlp("rmsprop", lr=0.01), mlp("adam", lr=0.01), mlp("sgd", loss="hinge"))
    # Nielsen's network2: sigmoid throughout, cross-entropy, L2 on the weights alone (examples/nielsen_network2.py's).
    yield Case("nielsen2-bce-l2", Config(layers=(4, 6, 2), hidden="sigmoid", output="sigmoid", loss="bce",
                                         init="glorot_uniform", lr=0.5, epochs=30, batch_size=10, seed=7,
                                         weight_decay=0.05, decay_biases=False), samples=40)
    # The textbook's two-layer net: tanh, softmax, cross-entropy, full batch (examples/guarded_ce_numpy.py's).
    yield Case("textbook-tanh-softmax-ce", Config(layers=(4, 8, 3), hidden="tanh", output="softmax",
                                                  loss="softmax_cross_entropy", init="glorot_uniform", lr=0.1,
                                                  epochs=40, seed=5), samples=30)
    # It stepped by an object's Adam; d2l's regression by in-place sgd (examples/optimizer_object_numpy, d2l_sgd_torch)
    yield Case("textbook-tanh-softmax-adam", Config(layers=(4, 8, 3), hidden="tanh", output="softmax", loss="softmax_"
               "cross_entropy", init="glorot_uniform", lr=0.01, epochs=30, batch_size=20, seed=3, optimizer="adam"), 60)
    # GPT-2's block as llm.c lays it out (examples/gpt2_block_numpy.py's), the first cases' own.
    yield next(case for case in CASES if case.id == "gpt2-block-biased-attention-adam")
    yield Case("d2l-linear-mse", Config(layers=(3, 2), hidden="identity", output="identity", loss="mse", init="glorot_"
               "uniform", lr=0.05, epochs=30, batch_size=10, seed=4), samples=40)
    yield bn("sgd")
    yield bn("momentum")
    yield bn("adam", lr=0.01)
    yield bn("momentum", loss="hinge")
    # RMSprop without batch norm: on it rounding grew to 1.4e-9 in the square average by epoch 30 (table: 1e-10).
    relu = next(case for case in CASES if case.id == "relu-softmax-ce-minibatch")
    yield replace(relu, id="cs231n-relu-rmsprop", config=relu.config.replace(optimizer="rmsprop", lr=0.01))
    yield Case("cs231n-cnn-adam", Config(
        model=(("conv2d", 1, 4, 3, 1, 1), "relu", ("maxpool2d", 2, 2), "flatten", ("dense", 100, 3), "softmax"),
        input_shape=(1, 10, 10), loss="softmax_cross_entropy", init="he_normal", lr=0.01, epochs=8, batch_size=16,
        seed=21, optimizer="adam"), samples=40)
    yield dropout("momentum")
    yield dropout("adam")
    # makemore part 4's: embedding, window concatenated, dense, batch norm, tanh, dense, cross-entropy (ninja's)
    yield Case("makemore-bn-momentum", Config(
        model=(("embedding", 10, 6), "flatten", ("dense", 18, 16), ("batchnorm", 16), "tanh", ("dense", 16, 10),
               "softmax"), input_shape=(3,), loss="softmax_cross_entropy", init="glorot_uniform", lr=0.05, epochs=20,
        batch_size=16, seed=27, optimizer="momentum"), samples=40)


PLUGIN_CASES = tuple(_plugin_cases())
BY_ID = {case.id: case for case in PLUGIN_CASES}
