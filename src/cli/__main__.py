"""``python -m portalflow.cli``: the same as the ``portalflow`` command."""

from . import main

main()
