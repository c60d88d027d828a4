"""Backbone benchmark behind ``pe-dense benchmark``: ``core`` (cases, models, inputs), ``timing``,
``flops``, ``memory`` (peak memory; on CPU through the ``worker`` subprocess) and ``report``
(tables, CSV/JSON, plots)."""
