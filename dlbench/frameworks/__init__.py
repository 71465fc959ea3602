"""Framework adapters (one per framework) and the registry that finds them through entry points."""
