"""atheris (libFuzzer) harnesses for the parsers that read what others send; ``python -m bench.fuzz`` runs them.

Each harness module defines ``one_input(data: bytes) -> None``: it feeds the
bytes to one parser, lets the documented errors pass and turns a broken
invariant into an AssertionError, so that anything else that escapes is a
finding.  ``one_input`` imports nothing from atheris: the same functions run
under plain Python (``tests`` or a replay of a crash file).
"""

HARNESSES = ("address", "compose", "segment", "smpp", "webhooks", "milter", "route")
