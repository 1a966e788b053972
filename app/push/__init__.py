"""Push domain."""
