"""Timing and memory measurement inside a worker (never prints, never imports a framework)."""
