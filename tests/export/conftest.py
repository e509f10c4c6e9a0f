"""Export fixtures live in tests/conftest.py so runtime tests reuse the one export."""
