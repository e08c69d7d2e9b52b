"""Tests of napari_structn2v._widgets, one file per widget module."""
