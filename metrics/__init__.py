"""Scorers. Each metric module registers itself; heavy libraries are imported lazily inside them."""
