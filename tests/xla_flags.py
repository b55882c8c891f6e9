"""The tests compile JAX programs cheaply; the CLI runs they start in subprocesses compile as shipped.

Most of a cold test run's time is XLA compiling each case's programs (about 250 of 470 worker-seconds in
`pytest --run-slow` with LLVM at -O0 alone). Three XLA:CPU options cut that to about a quarter: LLVM at -O0,
the older elemental emitters for fusions instead of the MLIR fusion emitters, and one codegen thread per
program (a worker per core already keeps the cores busy). Same HLO programs; the machine code differs in what
LLVM contracts or vectorises, which moved a loss against the optimised build by at most 1.7e-14 (relative,
float64) and 1.4e-5 (float32: float32 rounding) over every default case's run, far inside the tolerance tables.
On six cases' gradients and runs: compile 38.7 s as shipped, 22.1 s at -O0, 5.9 s with all three.
The benchmarks never get them (they time what users run), and the CLI runs tests/test_cli.py starts in
subprocesses drop them: test_jax_agrees_as_compiled_for_users trains the CNN model file on JAX that way, so the
build users get is cross-checked too.
"""

# option -> the tests' value; an option the environment's XLA_FLAGS already sets is left as chosen.
TESTS_ONLY = {
    "xla_backend_optimization_level": "0",
    "xla_cpu_use_fusion_emitters": "false",
    "xla_cpu_parallel_codegen_split_count": "1",
    # Four host devices, for JAX's data-parallel runs (tests/test_parallel.py, the cases on 2 and 4); every other run
    # uses the first.
    "xla_force_host_platform_device_count": "4",
}
FLAGS = tuple(f"--{option}={value}" for option, value in TESTS_ONLY.items())


def for_tests(flags):
    """XLA_FLAGS with the tests' options added, except those the flags already choose."""
    chosen = {f.lstrip("-").split("=", 1)[0] for f in flags.split()}
    return " ".join([*flags.split(), *(f for f in FLAGS if f.lstrip("-").split("=", 1)[0] not in chosen)])


def as_shipped(environ):
    """A copy of environ whose XLA_FLAGS no longer hold the tests' options (a subprocess then compiles as users do)."""
    env = dict(environ)
    if "XLA_FLAGS" in env:
        env["XLA_FLAGS"] = " ".join(f for f in env["XLA_FLAGS"].split() if f not in FLAGS)
    return env
