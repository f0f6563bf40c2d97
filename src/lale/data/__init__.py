"""Data: class schemas, readers, shard sets, preparation, synthetic scenes, datasets, surveys.

Subpackages by role, each importing only those before it:

1. :mod:`lale.data.schema` — class schemas, mask lookup tables, the image format;
2. :mod:`lale.data.io` — image/mask files and their folder layout, rasters, remote inputs;
3. :mod:`lale.data.shards` (LitData shard sets: layout, reading, remote sets, ``lale pack``) and
   :mod:`lale.data.prepare` (datasets prepared from GeoTIFF tiles and WorldCover maps);
4. the modules here — :mod:`~lale.data.dataset` (a split as a torch ``Dataset``),
   :mod:`~lale.data.collate`, :mod:`~lale.data.transforms`, :mod:`~lale.data.augment`,
   :mod:`~lale.data.stats`, :mod:`~lale.data.folder` — and :mod:`lale.data.synthetic`;
5. :mod:`lale.data.survey` — mask audits and schemas drafted from masks.

Nothing is imported here, so any part loads without the others (and without torch).
"""
