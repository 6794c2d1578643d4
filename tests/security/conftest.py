"""Security tests: what an attacker controls (an SMS's number and text, an address) goes nowhere it should not."""
