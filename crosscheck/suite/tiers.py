"""The default `pytest`'s tier: of the first cases (crosscheck/suite/cases.py), the fewest that cover every feature
and trait once, for the built-in backends (tests/conftest.py skips the others there, saying so; --run-slow runs all)."""

from crosscheck.common import registry
from crosscheck.suite.cases import CASES, features


def traits(case):
    """What a case exercises that the default `pytest` must cover once: features(config), and how it trains (full batch
    or minibatches, a partial last batch, square layers, a schedule, clipping, accumulation, weight decay, a data set);
    a sharded case's layer kinds and its mode, as (kind, mode) (how sharding splits each kind is what it adds)."""
    c = case.config
    n = case.samples or 4  # XOR's truth table
    found = features(c) | {"minibatch" if c.batch_size else "full batch"}
    found |= {name for name, on in (("partial last batch", c.batch_size and n % c.batch_size),
                                    ("square layers", any(l.kind == "dense" and len(set(l.shape)) == 1
                                                          for l in c.model)),
                                    ("schedule", c.schedule), ("clipping", c.clip), ("accumulation", c.accumulate > 1),
                                    ("weight decay", c.weight_decay), ("a data set", case.data)) if on}
    if c.parallel is not None:
        mode = c.parallel.partition(":")[0]
        found = {(kind, mode) for kind in found if kind in registry.LAYERS and kind not in registry.ACTIVATIONS}
        found.add(f"{mode} parallel")
    return found


def _covering(cases):
    """The default `pytest`'s cases: the seeds' runs, then, greedily, the case that covers most of what is left of
    every case's traits, until each is covered once (ties to the shorter run). The others run with --run-slow."""
    chosen = [c for c in cases if c.id in ("seed1-xor", "seed2-xor")]
    left = set().union(*(traits(c) for c in cases)) - set().union(*(traits(c) for c in chosen))
    while left:
        best = max(cases, key=lambda c: (len(traits(c) & left), -c.config.epochs))
        chosen.append(best)
        left -= traits(best)
    return tuple(c.id for c in cases if c in chosen)


# The default tier (tests/conftest.py): every feature and trait of the first cases on one case each, for the built-in
# backends; a plug-in is checked on every first case it supports (it supports few).
DEFAULT = _covering([c for c in CASES if not c.second])
