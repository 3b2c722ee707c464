"""The front end: a TOML spec's text to a validated Model (nothing derived yet)."""
