"""``python -m napari_structn2v.cli``: the ``structn2v`` command."""
import sys

from napari_structn2v.cli import main

sys.exit(main())
