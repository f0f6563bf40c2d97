"""``python -m lale.cli …`` runs the ``lale`` command (e.g. under ``torchrun``)."""

from lale.cli import main

main()
