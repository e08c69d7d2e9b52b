"""Tests that cut across modules on purpose: bad inputs, big data and Z context end to end, packaging,
the manifest."""
