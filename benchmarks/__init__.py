"""tinynet's benchmark suite: ``python -m benchmarks --help``.

tinynet against hand-written numpy references (and PyTorch CPU when installed), timed in
one run with interleaved repeats. See docs/benchmarks.md.
"""
