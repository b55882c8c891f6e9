"""The benchmarks' other training cores train the same trajectory as the reference.

Each benchmark row is only worth timing if it computes the right thing: the autodiff
training loops and PyTorch's torch.compile path are cross-checked like the mirrors.
"""

import importlib
from dataclasses import replace

import pytest

import backends
from common.driver import TrainState
from crosscheck import checks
from crosscheck.cases import BY_ID

EPOCHS = 256


def variant(driver, module):
    """driver, with its training core taken from backends.<name>.<module> instead of mlp."""
    core = importlib.import_module(f"{backends.REGISTRY[driver.name][0]}.{module}")

    class Mlp:
        forward, gradients = driver.mlp.forward, driver.mlp.gradients
        train = staticmethod(core.train)

    return replace(driver, name=f"{driver.name} {module}", mlp=Mlp)


@pytest.mark.frameworks
def test_autodiff_training_loop_agrees(driver, device):
    case = replace(BY_ID["seed1-xor"], n_checkpoints=1)
    config, params, X, y, _ = case.inputs(epochs=EPOCHS)
    run = variant(driver, "autodiff").run_train(params, X, y, config, device=device)
    checks.check_trajectory(driver, case, "float64", device, epochs=EPOCHS, run=with_checkpoints(run, case))


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", ["torch"])
def test_torch_compiled_training_agrees(driver, device):
    case = replace(BY_ID["seed2-xor"], n_checkpoints=1)
    config, params, X, y, _ = case.inputs(epochs=EPOCHS + 5)  # 8 compiled blocks of 32, then 5 eager epochs
    run = variant(driver, "compiled").run_train(params, X, y, config, checkpoints=(config.epochs,), device=device)
    checks.check_trajectory(driver, case, "float64", device, epochs=config.epochs, run=with_checkpoints(run, case))


def with_checkpoints(run, case):
    """These cores keep no intermediate checkpoints: the case has one, the last epoch, so this is its state."""
    (last,) = case.checkpoints(run.losses.shape[0])
    return replace(run, checkpoints={last: TrainState(run.params, {}, 0)})
