"""The tests compile JAX programs at LLVM -O0; the CLI runs they start in subprocesses compile as shipped.

Most of a cold test run's time is XLA compiling each case's programs (about 290 of 510 worker-seconds in
`pytest --run-slow`), and at -O0 XLA:CPU compiles them in about half the time. The programs are the same
HLO; the machine code differs in what LLVM contracts or vectorises, which moves a
float64 loss by at most 4.4e-16 over a whole run here (the bound the comparisons use is the float64
tolerance table's, far above that). The benchmarks never get it (they time what users run), and the CLI
runs tests/test_cli.py starts in subprocesses drop it: test_jax_agrees_as_compiled_for_users trains the CNN
model file on JAX that way, so the build users get is cross-checked too.
"""

OPTION = "xla_backend_optimization_level"
TESTS_ONLY = f"--{OPTION}=0"


def for_tests(flags):
    """XLA_FLAGS with LLVM's optimisation level at 0, unless the flags already choose one."""
    return flags if OPTION in flags else f"{flags} {TESTS_ONLY}".strip()


def as_shipped(environ):
    """A copy of environ whose XLA_FLAGS no longer hold the tests' -O0 (a subprocess then compiles as users do)."""
    env = dict(environ)
    if "XLA_FLAGS" in env:
        env["XLA_FLAGS"] = " ".join(f for f in env["XLA_FLAGS"].split() if f != TESTS_ONLY)
    return env
