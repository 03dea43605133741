"""The HuggingFace side: one aiohttp session, SSE parsing, upstream errors, provider adapters."""
