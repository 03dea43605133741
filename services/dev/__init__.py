"""Developer tools, not part of a deployment: the simulated HF router (offline demo and tests) and the contract
generator (`make schemas`)."""
