"""The service: the API, the console, the CLI, the channel registry and the full settings."""
