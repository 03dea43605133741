"""hfbus benchmark suite: hfbus beside a hand-rolled consumer, FastStream + huggingface_hub, and no bus at all.

`python -m bench` (or `make bench`) starts its own nats-servers, fake routers and consumer processes, drives
them from one asyncio load generator, prints the tables and the ratios against issue 5's targets, and writes
`bench/results/latest.json`. See `python -m bench --help`.
"""

from __future__ import annotations
