"""The HTTP door onto the bus: the OpenAI-compatible API, virtual keys and limits, the console (to come)."""
