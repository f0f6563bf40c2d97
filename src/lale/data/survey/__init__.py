"""What a dataset's masks hold: audits against a class schema, and schemas drafted from them.

- :mod:`lale.data.survey.audit` — the masks checked against a schema before training, and the
  reports of pixels it does not know;
- :mod:`lale.data.survey.schema_init` — a class schema written from what the masks hold
  (``lale schema init``; torch-free).

The top of :mod:`lale.data`: it reads through the dataset, the shards, the readers and the
schemas, and none of them imports it.
"""
