"""ocindex's terminal dashboard, built on the headless indexer package."""
