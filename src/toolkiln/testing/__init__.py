"""Test doubles and fixtures, shipped with the package so tests, benchmarks and downstream users share one set.

- :mod:`~toolkiln.testing.chatserver`: a real OpenAI-compatible chat server on 127.0.0.1 with scripted
  replies and injected faults (the one stand-in the project allows for a remote LLM);
- :mod:`~toolkiln.testing.scripted`: a responder for it that plays the three dialog agents;
- :mod:`~toolkiln.testing.examples`: hand-written valid dialogs of all five types;
- :mod:`~toolkiln.testing.pool`: a small, realistic API pool (21 APIs, 3 domains).

Nothing in the pipeline's stages imports this package.
"""
