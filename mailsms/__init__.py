"""mailsms: an SMS gateway for mail systems."""

__version__ = "0.1.0"
