"""The engine: reconciler, fan-out, workers, retries, receipts, on a store and channels."""
