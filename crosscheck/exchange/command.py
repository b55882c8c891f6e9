"""A program in any language as an implementation under check: `crosscheck --command NAME=PROGRAM`.

The argument protocol: the suite writes a problem file and runs

    PROGRAM PROBLEM.safetensors RESULT.safetensors

from the current folder (the two files lie in a temporary folder of their own). The program reads the problem
(crosscheck/exchange/tensors.py: the data, the initial parameters, the run in the metadata), computes the tasks the
metadata's "tasks" asks for (forward, gradients, train), writes the result file and exits 0. A problem of no tasks
asks only whether the program runs its configuration: the answer is a result of metadata alone, "unsupported"
giving the reason where it does not. Every check of the report and of the pytest suite then runs on the program as
on any backend: the gradients, the training run and its trajectory, the diagnosis.

A program that exits non-zero, runs past its timeout (it is killed, with every process it started), writes no
result, an unreadable or truncated one, a tensor missing, extra, of the wrong dtype or shape, or not finite, gets
one line naming that (exchange.BadResult), never a traceback.

Replay (crosscheck verify) answers the same calls from a result file already written, for the problem it was
written for.
"""

import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile

import numpy as np

from crosscheck import backends
from crosscheck.adapters.readback import _driver
from crosscheck.common import registry
from crosscheck.common.driver import Run, TrainState, Unsupported
from crosscheck.common.initializers import initial_params
from crosscheck.exchange import tensors as exchange
from crosscheck.exchange.tensors import BadResult

TIMEOUT_S = 60.0  # per run of the program; --command NAME=PROGRAM takes CROSSCHECK_COMMAND_TIMEOUT to change it


class Program:
    """The mlp protocol (forward, gradients, train) answered by results of the problems asked; a subclass says how a
    problem's result is got (answer)."""

    def __init__(self, name):
        self.name = name

    def answer(self, config, tensors, metadata, tasks, checkpoints):
        """(result tensors, the tasks they answer) for the problem."""
        raise NotImplementedError

    def _ask(self, config, params, X, y, tasks, orders=None, checkpoints=(), masks=None, buffers=None):
        exchange.check_exchangeable(config)
        tensors = exchange.problem_tensors(config, params, X, y, orders, masks, buffers)
        metadata = exchange.problem_metadata(config, tasks, checkpoints)
        return self.answer(config, tensors, metadata, tasks, checkpoints)

    def forward(self, params, X, config, buffers=None):
        if buffers is not None:  # evaluation mode: batch norm reads the running statistics handed in
            result, _ = self._ask(config, params, X, None, ("evaluate",), buffers=buffers)
            return [(None, result["evaluation.output"])]
        result, _ = self._ask(config, params, X, None, ("forward",))
        layers = [result.get(f"forward.{i}") for i in range(1, len(config.model) + 1)]
        if all(out is not None for out in layers):  # each layer's output: the diagnosis locates the first that parts
            return [(None, out) for out in layers]
        return [(None, result["output"])]

    def gradients(self, params, X, y, config):
        result, _ = self._ask(config, params, X, y, ("gradients",))
        return result["loss"], exchange.as_params(config, result, "grad.")

    def train(self, params, X, y, config, orders=None, checkpoints=(), masks=None):
        result, _ = self._ask(config, params, X, y, ("train",), orders, tuple(sorted(checkpoints)), masks)
        steps = result["losses"].shape[1]
        saved = {e: TrainState(exchange.as_params(config, result, f"epoch{e}."),
                               {name: exchange.as_params(config, result, f"epoch{e}.state.{exchange.state_key(name)}.")
                                for name in registry.OPTIMIZERS[config.optimizer].state}, e * steps,
                               exchange.as_buffers(config, result, f"epoch{e}.buffer.")
                               if config.buffer_names() else ())
                 for e in checkpoints}
        final = exchange.as_params(config, result, "final.")
        # where the run ends, its state: the last checkpoint's optimizer state and buffers (a run is trained at once)
        state = saved[config.epochs]._replace(params=final) if config.epochs in saved else None
        return Run(losses=result["losses"], checkpoints=saved, params=final, state=state)


class Command(Program):
    """Runs the program once per distinct problem (results kept: the report asks one problem from several checks)."""

    def __init__(self, name, argv, timeout=TIMEOUT_S):
        super().__init__(name)
        self.argv, self.timeout = list(argv), timeout
        self._kept: dict = {}
        self._declared: dict = {}
        self._hung: str | None = None  # a program that ran past its timeout is not run again (each would wait)

    def supports(self, config):
        """None if the program runs config, else the reason it gives: asked with a problem of no tasks (one sample of
        zeros, the initial parameters), to which it answers with its result's metadata alone. Kept per config."""
        key = repr(config)
        if key not in self._declared:
            try:
                exchange.check_exchangeable(config)
                X = np.zeros((1, *config.sample_shape), dtype=np.int64 if _takes_ids(config) else config.dtype)
                self._ask(config, initial_params(config), X, None, ())
                self._declared[key] = None
            except Unsupported as exc:
                self._declared[key] = str(exc).removeprefix(f"{self.name} does not support this configuration: ")
            except BadResult:
                self._declared[key] = None  # the checks themselves say what is wrong with the program
        return self._declared[key]

    def answer(self, config, tensors, metadata, tasks, checkpoints):
        key = _key(tensors, metadata)
        if key not in self._kept:
            self._kept[key] = self._run(config, tensors, metadata, tasks, checkpoints)
        return self._kept[key]

    def _run(self, config, tensors, metadata, tasks, checkpoints):
        if self._hung:
            raise BadResult(f"{self._hung} (not run again)")
        with tempfile.TemporaryDirectory(prefix="crosscheck-") as folder:
            problem, result = os.path.join(folder, "problem.safetensors"), os.path.join(folder, "result.safetensors")
            exchange.write(problem, tensors, metadata)
            self._execute(problem, result)
            if not os.path.exists(result):
                raise BadResult(f"{self.name}: bad result: {self._program()} exited 0 but wrote no result file "
                                f"(its second argument)")
            steps = tensors["masks.1"].shape[1] if "masks.1" in tensors else _steps(config, len(tensors["X"]))
            return exchange.check_result(self.name, result, config, len(tensors["X"]), steps, tasks, checkpoints)

    def _program(self):
        return shlex.join(self.argv)

    def _execute(self, problem, result):
        """Run the program on problem; BadResult if it cannot start, exits non-zero or runs too long."""
        try:
            process = subprocess.Popen([*self.argv, problem, result], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise BadResult(f"{self.name}: {self._program()} could not start: {exc.strerror}") from None
        try:
            _, err = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            self._hung = (f"{self.name}: {self._program()} ran past its timeout of {self.timeout:g} s and was killed "
                          f"(with every process it started)")
            raise BadResult(self._hung) from None
        finally:
            if process.poll() is None:  # interrupted: nothing is left running
                _kill(process)
        if process.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            how = (f"was killed by signal {signal.Signals(-process.returncode).name}" if process.returncode < 0
                   else f"exited with status {process.returncode}")
            said = f": {lines[-1][:200]}" if lines else ""
            raise BadResult(f"{self.name}: {self._program()} {how}{said}")


def _kill(process):
    """The program and every process of its group killed, its pipes closed (a process that left the group keeps them
    open: not waited for)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    process.wait()


def _takes_ids(config):
    return config.model[0].kind == "embedding"


def _steps(config, n_samples):
    return 1 if config.batch_size is None else -(-n_samples // config.batch_size)


def _key(tensors, metadata):
    digest = hashlib.sha256(repr(sorted(metadata.items())).encode())
    for name in sorted(tensors):
        t = tensors[name]
        digest.update(f"{name}{t.dtype}{t.shape}".encode())
        digest.update(t.tobytes())  # C order, whatever t's
    return digest.hexdigest()


class Replay(Program):
    """The answers a result file holds, for the problem it was written for (crosscheck verify): that problem, or the
    first epochs of its run (the diagnosis trains one), and nothing else."""

    def __init__(self, name, path, problem_tensors, problem_metadata, result, asked):
        super().__init__(name)
        self.path, self.tensors, self.metadata = path, problem_tensors, problem_metadata
        self.result, self.asked = result, asked

    def _evaluated(self, tensors):
        if "evaluation.output" not in self.result or not self._at_final_state(tensors):
            raise Unsupported(f"{self.name} does not support this check: {self.path} holds the evaluation-mode output "
                              f"at its final state alone (evaluation.output)")
        return {"evaluation.output": self.result["evaluation.output"]}

    def _at_final_state(self, tensors):
        """Whether a problem's parameters and buffers are the result's own final ones, and its X the problem's."""
        final = {k.removeprefix("final."): v for k, v in self.result.items() if k.startswith("final.")}
        last = max((int(k.split(".")[0][5:]) for k in self.result if k.startswith("epoch") and ".buffer." in k),
                   default=None)
        held = {k.replace(f"epoch{last}.", ""): v for k, v in self.result.items()
                if k.startswith(f"epoch{last}.buffer.")}
        wanted = {"X": self.tensors["X"], **final, **held}
        return set(tensors) == set(wanted) and all(np.array_equal(tensors[k], wanted[k]) for k in tensors)

    def answer(self, config, tensors, metadata, tasks, checkpoints):
        missing = [t for t in tasks if t not in self.asked]
        if missing:
            raise Unsupported(f"{self.name} does not support this check: {self.path} holds no {', '.join(missing)}")
        if tasks == ("evaluate",):  # at the trained state: the result's own final parameters and buffers
            return self._evaluated(tensors), tasks
        if tasks == ("forward",) and "evaluation.output" in self.result and self._at_final_state(tensors):
            return {"output": self.result["evaluation.output"]}, tasks  # a model without buffers: the same pass
        epochs = int(metadata["epochs"])
        same = {k: v for k, v in metadata.items() if k not in ("tasks", "checkpoints", "epochs", "config")}
        ours = {k: v for k, v in self.metadata.items() if k not in ("tasks", "checkpoints", "epochs", "config")}
        if same != ours or not set(tensors) <= set(self.tensors) or epochs > int(self.metadata["epochs"]) or not all(
                _same_prefix(tensors[n], self.tensors[n], n) for n in tensors):
            raise Unsupported(f"{self.name} does not support this check: {self.path} answers the exported problem "
                              f"only")
        if "train" not in tasks:
            return self.result, tasks
        if epochs == int(self.metadata["epochs"]):
            return self.result, tasks
        named = {f"epoch{e}." for e in (epochs, *checkpoints)}
        if not all(any(k.startswith(p) for k in self.result) for p in named):
            raise Unsupported(f"{self.name} does not support this check: {self.path} holds no parameters after epoch "
                              f"{epochs}")
        part = dict(self.result, losses=self.result["losses"][:epochs])
        part.update({"final." + k.split(".", 1)[1]: v for k, v in self.result.items()
                     if k.startswith(f"epoch{epochs}.")})
        return part, tasks


def _same_prefix(asked, held, name):
    """Whether a problem's tensor is the held one, or its first epochs (orders, masks)."""
    if name == "orders" or name.startswith("masks."):
        return asked.shape[1:] == held.shape[1:] and np.array_equal(asked, held[:len(asked)])
    return asked.shape == held.shape and asked.dtype == held.dtype and np.array_equal(asked, held)


def command(program, *, name="command", timeout=None):
    """A Driver that runs program (a path, or a command line split as a shell would) on each problem asked."""
    argv = shlex.split(program) if isinstance(program, str) else list(program)
    if not argv:
        raise ValueError("--command NAME=PROGRAM: the program is empty")
    found = argv[0] if os.sep in argv[0] else shutil.which(argv[0])
    if found is None or not os.path.isfile(found):
        raise ValueError(f"--command {name}={program}: no such program {argv[0]!r}" +
                         (" (build the example first: make -C examples/c)" if "examples/c" in argv[0] else ""))
    if not os.access(found, os.X_OK):
        raise ValueError(f"--command {name}={program}: {argv[0]} is not executable")
    argv[0] = os.path.abspath(found)
    if timeout is None:
        timeout = float(os.environ.get("CROSSCHECK_COMMAND_TIMEOUT", TIMEOUT_S))
    program = Command(name, argv, timeout)
    return _driver(name, program, None, f"command {os.path.basename(argv[0])}", program.supports)


class CommandSpec:
    """What backends.register keeps for --command NAME=PROGRAM: its Driver, built (and the program found) once."""

    def __init__(self, name, program):
        self.name, self.program = name, program
        self.driver = command(program, name=name)  # refused now if the program is not there

    def __call__(self):
        """The one Driver of the registration: every check of a session shares its results, its declared support
        and a hang (not waited for twice)."""
        return self.driver

    def __str__(self):
        return f"command {self.program}"


def register(spec):
    """Register --command's NAME=PROGRAM with the backends; ValueError naming what is wrong with it."""
    name, sep, program = spec.partition("=")
    if not sep or not name.strip() or not program.strip():
        raise ValueError(f"a command is given as NAME=PROGRAM, got {spec!r}")
    if name.strip() in backends.REGISTRY:
        raise ValueError(f"plug-in name {name.strip()!r} is taken by a built-in backend")
    backends.register(name.strip(), CommandSpec(name.strip(), program.strip()))
