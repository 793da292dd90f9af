"""Channel adapters: one package per channel, each with its simulator."""
