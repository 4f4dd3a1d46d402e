"""Models of decssl_mm (self-supervised adaptations, FeatARC)."""
