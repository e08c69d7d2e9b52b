"""The test suite; a package so that equal file names in different folders work (see README.md)."""
