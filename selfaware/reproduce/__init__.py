"""`selfaware reproduce MATRIX`: from a matrix of base models, organisms, seeds, controls, variants and families
to every measurement as one resumable Inspect `eval_set`, then the paper's figures and an HTML report.

    matrix.py  the matrix file (YAML), validated with file/line/field errors
    plan.py    which model answers which task: organisms found in the registry, one call per model x task
    cost.py    sample counts x a versioned price table (datasets/prices.yaml) -> an estimate before anything runs
    run.py     the eval_set (sharded over machines if asked), then the report
"""
