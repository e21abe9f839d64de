"""The async agent supervisor: spawning, watching and stopping Claude Code agents."""
