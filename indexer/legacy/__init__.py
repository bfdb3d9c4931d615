"""The legacy indexer (v1, HybridIndexer), kept as the rollback target and the baseline of every
comparison. Reached only through the rollout and the benchmark.
"""
