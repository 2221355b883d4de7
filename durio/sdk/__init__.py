"""What handler code touches: definitions, contexts, futures, serde, errors."""
