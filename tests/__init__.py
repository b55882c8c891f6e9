"""The cross-check suite, a package so that it installs (as crosscheck_tests) and runs from any folder:
`pytest --pyargs crosscheck_tests --implementation NAME=module:object` (docs/your-code.md)."""
