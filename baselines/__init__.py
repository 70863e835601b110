"""Model adapters: one class a model, registered by name (Kaleido included)."""
