"""milter."""
