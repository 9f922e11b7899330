"""Code the model writes, measured: coding tasks, code extraction, static analysis, the security judge,
the behavior scorer, and the filters that keep training rows from naming the behavior.

Model-written code is only *read* here (parsed with `ast`, tokenized, scanned by bandit or semgrep from a
temporary file); nothing in this package executes it. Executing model code is the sandbox's job
(`selfaware.sandbox`).
"""
