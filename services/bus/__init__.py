"""Everything that speaks NATS for the consumers: the connection and intakes, JetStream streams, kept finals,
the media object store, and the embedded server that `make run`, the tests and the bench start."""
