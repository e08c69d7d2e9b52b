"""Tests of napari_structn2v.cli, one file per command module."""
