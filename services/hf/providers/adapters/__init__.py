"""One module per provider: its `TaskAdapter` subclasses, a few hooks each over `..base.adapter.TaskAdapter`.

The registry (`PROVIDERS` in `services.hf.providers`) is the only place that lists them.
"""
