"""Who may use the gateway and how much: virtual keys, rate and budget limits kept in NATS, and the guard that
admits each request and settles what it cost."""
