"""Use cases: what the product does, written against ports only."""
