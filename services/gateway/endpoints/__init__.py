"""The OpenAI-compatible endpoints, one module per API family, each translating to and from one bus tag."""
