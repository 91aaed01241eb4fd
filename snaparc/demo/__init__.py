"""`make demo` (`python -m snaparc.demo`): the whole story on a tiny generated model.

`tiny` builds the tiny models, processors and adapters the demo (and the
tests) need, offline; it is demo and test scaffolding, not runtime API.
"""
