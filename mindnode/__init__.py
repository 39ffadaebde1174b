"""mindnode package."""
