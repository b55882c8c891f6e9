"""Worked examples: implementations under test, plugged into the suite from outside its backends."""
