"""Stand-ins for what cannot run here: a GitHub emulator on loopback and a stand-in agent."""
