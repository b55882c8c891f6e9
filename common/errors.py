"""The errors every layer of the harness may raise, kept below all of them (the verdict and the adapters both raise
and catch AdapterError)."""


class AdapterError(ValueError):
    """An adapter's declaration does not fit the code it wraps (attribute names, layout, parameter order): said
    with what was expected, before the code trains. Not a disagreement: the check could not be made."""
