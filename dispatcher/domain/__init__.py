"""The domain: Loa's types and rules, with no I/O."""
