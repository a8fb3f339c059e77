"""The built-in demonstration: a scenario generator and the orchestration of demo nodes."""
