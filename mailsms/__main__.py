"""``python -m mailsms``."""

from mailsms.cli import run

run()
