"""clambake-tui: run a squad of headless Claude Code agents against a GitHub repository."""

__version__ = "0.1.0"

__all__ = ["__version__"]
