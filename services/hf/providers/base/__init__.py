"""The template every adapter fills in, and the values it trades with the executor. No provider names here.

Split from the adapter modules (`../adapters/`) along the one seam that changes at a different pace: these
modules change when the flow model changes (a new kind of step, a new media rule), the adapters when a
provider's wire format does. Nothing outside `services.hf.providers` imports from here directly.
"""
