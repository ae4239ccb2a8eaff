"""tinynet's benchmark suite: ``python -m benchmarks --help``.

tinynet against hand-written numpy references (and PyTorch CPU when installed), timed in
one run with interleaved repeats; ``python -m benchmarks compare OLD.json NEW.json`` says what
changed between two saved runs, ``--plot`` draws one. See docs/benchmarks.md.
"""
