"""Benchmarks: each module has a ``main()``; ``python -m benches`` runs them all."""
