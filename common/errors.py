"""The errors every layer of the harness may raise, kept below all of them (the verdict and the adapters both raise
and catch AdapterError)."""


class AdapterError(ValueError):
    """An adapter's declaration does not fit the code it wraps (attribute names, layout, parameter order, what a
    function returns): said with what was expected and what was found. Not a disagreement: the check could not be
    made, and the run is refused (the report exits 2)."""


class CodeRaised(AdapterError):
    """The code under test raised while the adapter called it as declared: a crash of the code, which the checks
    report as a disagreement (a missing transpose crashes where the layers are not square), not a refusal."""


def refusal(exc) -> bool:
    """Whether exc says the code does not fit its adapter's interface (a refusal), not that the code crashed."""
    return isinstance(exc, AdapterError) and not isinstance(exc, CodeRaised)
